import Foundation
import Testing

@testable import TesseraData
@testable import TesseraTensor

/// Runs `body` with a fresh directory that is removed afterwards.
func withTemporaryDirectory<R>(_ body: (URL) throws -> R) throws -> R {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("tessera-data-tests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

/// Writes `text` (UTF-8) to `name` in `directory`.
@discardableResult
func writeFile(_ text: String, named name: String, in directory: URL) throws -> URL {
    try writeFile(Array(text.utf8), named: name, in: directory)
}

@discardableResult
func writeFile(_ bytes: [UInt8], named name: String, in directory: URL) throws -> URL {
    let url = directory.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url
}

/// Asserts that `body` throws a `DataError` with `code`, and that its fields and message name
/// the file, row and column a user needs to fix it.
func expectDataError(
    _ code: DataError.Code, file: URL? = nil, row: Int? = nil, column: String? = nil,
    mentioning fragments: [String] = [], sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected DataError.\(code), but nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as DataError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        if let file {
            #expect(error.file == file.path, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains(file.path), "\(error)", sourceLocation: sourceLocation)
        }
        if let row {
            #expect(error.row == row, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains("row \(row)"), "\(error)", sourceLocation: sourceLocation)
        }
        if let column {
            #expect(error.column == column, "\(error)", sourceLocation: sourceLocation)
            #expect(error.message.contains("\"\(column)\""), "\(error)", sourceLocation: sourceLocation)
        }
        for fragment in fragments {
            #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("expected DataError.\(code), got \(error)", sourceLocation: sourceLocation)
    }
}

/// The bytes of an `.npy` file laid out as numpy writes it: magic, version, little-endian
/// header length, a dict literal padded with spaces to a 64-byte boundary and ended by "\n",
/// then the payload.
func npyBytes(
    descr: String, shape: [Int], fortranOrder: Bool = false, major: UInt8 = 1, payload: [UInt8],
    headerOverride: String? = nil
) -> [UInt8] {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var dict =
        headerOverride
        ?? "{'descr': '\(descr)', 'fortran_order': \(fortranOrder ? "True" : "False"), 'shape': \(shapeText), }"
    let prefix = major == 1 ? 10 : 12
    while (prefix + dict.utf8.count + 1) % 64 != 0 { dict += " " }
    dict += "\n"
    let length = dict.utf8.count
    var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [major, 0]
    if major == 1 {
        bytes += [UInt8(length & 0xFF), UInt8(length >> 8)]
    } else {
        bytes += [UInt8(length & 0xFF), UInt8((length >> 8) & 0xFF), UInt8((length >> 16) & 0xFF), UInt8(length >> 24)]
    }
    return bytes + Array(dict.utf8) + payload
}

/// Little-endian bytes of fixed-width integers.
func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}

func float32Bytes(_ values: [Float]) -> [UInt8] { littleEndianBytes(values.map(\.bitPattern)) }
func float64Bytes(_ values: [Double]) -> [UInt8] { littleEndianBytes(values.map(\.bitPattern)) }

/// The bytes of an IDX file: `00 00 type rank`, big-endian dimensions, then `payload`.
func idxBytes(type: UInt8, shape: [Int], payload: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = [0, 0, type, UInt8(shape.count)]
    for d in shape { bytes += withUnsafeBytes(of: UInt32(d).bigEndian) { Array($0) } }
    return bytes + payload
}

/// A classification dataset of `n` samples whose single feature is the sample's index and
/// whose label is `index mod classes`: lets a test recover which samples went where.
func indexedDataset(_ n: Int, classes: Int = 10) throws -> Dataset {
    try Dataset(
        features: Tensor(shape: [n, 1], scalars: (0..<n).map(Float.init)),
        labels: Tensor((0..<n).map { Float($0 % classes) }), classCount: classes)
}
