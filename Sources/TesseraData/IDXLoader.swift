public import Foundation
public import TesseraTensor

/// Reads IDX files, the format of MNIST and Fashion-MNIST (LeCun et al.), as `Float`
/// tensors.
///
/// Why IDX: it is how the classic image benchmarks of the federated-learning literature
/// (MNIST, FEMNIST exports, Fashion-MNIST) are distributed, and it is trivial to validate.
/// An IDX file is a 4-byte magic `00 00 TT DD` (TT the element type, DD the number of
/// dimensions), DD big-endian 32-bit dimension sizes, then the elements in big-endian, row-major
/// order. All six element types are read (`08` unsigned byte, `09` signed byte, `0B` int16,
/// `0C` int32, `0D` float32, `0E` float64).
///
/// **Not supported: gzip.** The files are usually downloaded as `.gz`; decompress them first
/// (`gunzip train-images-idx3-ubyte.gz`). A gzip file is recognised and reported as such.
public enum IDXLoader {
    /// Loads one IDX file as a tensor of its dimensions.
    ///
    /// - Parameter scaleBytesToUnit: divide unsigned-byte elements by 255, so pixel
    ///   intensities land in `[0, 1]` (what the presets expect). Leave it off for label files.
    /// - Throws: ``DataError`` naming the file: `malformedHeader` (bad magic, gzip, zero
    ///   dimensions), `unsupportedDType`, `truncatedData` or `trailingData` (the size does not
    ///   match the dimensions).
    public static func loadTensor(_ url: URL, scaleBytesToUnit: Bool = false) throws -> Tensor {
        let path = url.path
        let reader = try FileReader(path: path)
        let magic = try reader.readBytes(4)
        if magic.count >= 2 && magic[0] == 0x1F && magic[1] == 0x8B {
            throw DataError(
                .malformedHeader,
                "\(path): the file is gzip-compressed; IDX files are read uncompressed (run `gunzip` on it first)",
                file: path)
        }
        guard magic.count == 4, magic[0] == 0, magic[1] == 0 else {
            throw DataError(
                .malformedHeader,
                "\(path): not an IDX file: it must start with two zero bytes, then the type and rank bytes",
                file: path)
        }
        let type: ElementType
        switch magic[2] {
        case 0x08: type = ElementType(kind: .unsigned, size: 1, bigEndian: true)
        case 0x09: type = ElementType(kind: .signed, size: 1, bigEndian: true)
        case 0x0B: type = ElementType(kind: .signed, size: 2, bigEndian: true)
        case 0x0C: type = ElementType(kind: .signed, size: 4, bigEndian: true)
        case 0x0D: type = ElementType(kind: .float, size: 4, bigEndian: true)
        case 0x0E: type = ElementType(kind: .float, size: 8, bigEndian: true)
        default:
            throw DataError(
                .unsupportedDType,
                "\(path): IDX element type 0x\(String(magic[2], radix: 16)) is not one of 08, 09, 0B, 0C, 0D, 0E",
                file: path)
        }
        let rank = Int(magic[3])
        guard rank >= 1 else {
            throw DataError(.malformedHeader, "\(path): the IDX header declares zero dimensions", file: path)
        }
        let dimBytes = try reader.readBytes(4 * rank)
        guard dimBytes.count == 4 * rank else {
            throw DataError(
                .truncatedData, "\(path): the file ends inside its header (\(rank) dimension sizes expected)",
                file: path)
        }
        let shape = (0..<rank).map { d in
            dimBytes[4 * d..<4 * d + 4].reduce(0) { $0 << 8 | Int($1) }
        }
        guard let count = checkedProduct(shape), count.multipliedReportingOverflow(by: type.size).overflow == false
        else {
            throw DataError(.malformedHeader, "\(path): the dimensions \(shape) are too large", file: path)
        }
        let expectedBytes = count * type.size
        if let size = reader.size {
            let available = size - reader.offset
            if available < expectedBytes {
                throw DataError(
                    .truncatedData,
                    "\(path): dimensions \(shape) need \(expectedBytes) bytes of data but the file has only \(available)",
                    file: path)
            }
            if available > expectedBytes {
                throw DataError(
                    .trailingData,
                    "\(path): dimensions \(shape) need \(expectedBytes) bytes of data but the file has \(available) (\(available - expectedBytes) extra); is the header right?",
                    file: path)
            }
        }
        var values = try readElements(reader, count: count, type: type, what: "data for dimensions \(shape)")
        if try reader.hasMoreBytes() {
            throw DataError(
                .trailingData, "\(path): the file has data after the \(count) elements of \(shape)", file: path)
        }
        if scaleBytesToUnit && type.kind == .unsigned && type.size == 1 {
            values.withUnsafeMutableBufferPointer { v in
                for i in v.indices { v[i] /= 255 }
            }
        }
        return Tensor(shape: shape, scalars: values)
    }

    /// Loads an image file (`[N, rows, cols]`, bytes scaled to `[0, 1]`) and a label file
    /// (`[N]`) as a classification dataset with features `[N, rows, cols]`.
    ///
    /// Give the batch iterator `sampleShape: [1, rows, cols]` to feed a convolution.
    ///
    /// - Parameter classCount: the number of classes; `nil` infers the largest label + 1
    ///   (10 for a full MNIST label file).
    public static func loadDataset(images: URL, labels: URL, classCount: Int? = nil) throws -> Dataset {
        let x = try loadTensor(images, scaleBytesToUnit: true)
        let y = try loadTensor(labels)
        guard y.rank == 1 else {
            throw DataError(
                .shapeMismatch, "\(labels.path): a label file must have one dimension, found \(y.shape)",
                file: labels.path)
        }
        guard x.shape[0] == y.shape[0] else {
            throw DataError(
                .shapeMismatch,
                "\(images.path) holds \(x.shape[0]) images but \(labels.path) holds \(y.shape[0]) labels",
                file: labels.path)
        }
        let classes = try validateClassLabels(y.scalars, classCount: classCount, file: labels.path)
        return try Dataset(features: x, labels: y, classCount: classes)
    }
}
