import Foundation
import TesseraTensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file opened for sequential reading with plain `read(2)` calls, closed on deinit.
///
/// The binary loaders read a header, then the payload straight into the output `[Float]` (or
/// through one fixed-size conversion buffer), so a large array file never exists twice in
/// memory.
final class FileReader {
    let path: String
    /// The file's size in bytes, when it is a regular file.
    let size: Int?
    private let fd: Int32
    /// How many bytes have been read so far.
    private(set) var offset = 0

    init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw DataError(.ioFailure, "\(path): cannot open the file: \(reason)", file: path)
        }
        self.fd = fd
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG {
            size = Int(info.st_size)
        } else {
            size = nil
        }
    }

    deinit { close(fd) }

    /// Reads up to `count` bytes, fewer only at the end of the file; returns how many.
    func read(into destination: UnsafeMutableRawPointer, count: Int) throws -> Int {
        var done = 0
        while done < count {
            let n = systemRead(fd, destination + done, count - done)
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                throw DataError(.ioFailure, "\(path): read failed: \(reason)", file: path)
            }
            if n == 0 { break }
            done += n
        }
        offset += done
        return done
    }

    /// Reads up to `count` bytes into a new array (for headers).
    func readBytes(_ count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let n = try bytes.withUnsafeMutableBytes { try read(into: $0.baseAddress!, count: count) }
        bytes.removeLast(count - n)
        return bytes
    }

    /// Whether any byte is left (consumes at most one byte).
    func hasMoreBytes() throws -> Bool {
        var byte: UInt8 = 0
        return try read(into: &byte, count: 1) == 1
    }
}

/// `read(2)`, named apart from `FileReader.read(into:count:)`.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

/// The element types the binary loaders convert to `Float`.
struct ElementType: Hashable, Sendable {
    enum Kind: Hashable, Sendable { case float, signed, unsigned }
    var kind: Kind
    var size: Int
    var bigEndian: Bool

    /// Converts `count` elements from `source` into `destination`.
    func convert(_ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
        switch (kind, size) {
        case (.float, 4):
            for i in 0..<count {
                let bits = fixEndian(source.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
                destination[i] = Float(bitPattern: bits)
            }
        case (.float, 8):
            for i in 0..<count {
                let bits = fixEndian(source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))
                destination[i] = Float(Double(bitPattern: bits))
            }
        case (.unsigned, 1):
            let bytes = source.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { destination[i] = Float(bytes[i]) }
        case (.signed, 1):
            let bytes = source.assumingMemoryBound(to: Int8.self)
            for i in 0..<count { destination[i] = Float(bytes[i]) }
        case (.unsigned, 2): load(source, count, destination, as: UInt16.self)
        case (.signed, 2): load(source, count, destination, as: Int16.self)
        case (.unsigned, 4): load(source, count, destination, as: UInt32.self)
        case (.signed, 4): load(source, count, destination, as: Int32.self)
        case (.unsigned, 8): load(source, count, destination, as: UInt64.self)
        case (.signed, 8): load(source, count, destination, as: Int64.self)
        default: preconditionFailure("unsupported element type \(self)")
        }
    }

    private func load<T: FixedWidthInteger>(
        _ source: UnsafeRawPointer, _ count: Int, _ destination: UnsafeMutablePointer<Float>, as: T.Type
    ) {
        for i in 0..<count {
            let raw = source.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)
            destination[i] = Float(bigEndian ? T(bigEndian: raw) : T(littleEndian: raw))
        }
    }

    private func fixEndian<T: FixedWidthInteger>(_ raw: T) -> T {
        bigEndian ? T(bigEndian: raw) : T(littleEndian: raw)
    }

    /// Whether the bytes can be copied into a `[Float]` as they are.
    var isNativeFloat32: Bool {
        kind == .float && size == 4 && bigEndian == (1.bigEndian == 1)
    }
}

/// Reads `count` elements of `type` from `reader` into a new `[Float]`, with memory of one
/// output array plus at most one 1 MiB conversion buffer.
///
/// - Throws: `DataError.truncatedData` if the file ends early (`what` names the payload in
///   the message).
func readElements(_ reader: FileReader, count: Int, type: ElementType, what: String) throws -> [Float] {
    let byteCount = count * type.size
    if type.isNativeFloat32 {
        var got = 0
        let values = try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            got = try reader.read(into: UnsafeMutableRawPointer(buffer.baseAddress!), count: byteCount)
            // Zero the tail so the array is fully initialised even when we are about to throw.
            if got < byteCount {
                UnsafeMutableRawPointer(buffer.baseAddress!).advanced(by: got)
                    .initializeMemory(as: UInt8.self, repeating: 0, count: byteCount - got)
            }
            initialized = count
        }
        guard got == byteCount else { throw truncated(reader, what: what, expected: byteCount, found: got) }
        return values
    }
    let chunkElements = max(1, (1 << 20) / type.size)
    let scratch = UnsafeMutableRawPointer.allocate(byteCount: chunkElements * type.size, alignment: 16)
    defer { scratch.deallocate() }
    var values = [Float](repeating: 0, count: count)
    var done = 0
    try values.withUnsafeMutableBufferPointer { out in
        while done < count {
            let take = min(chunkElements, count - done)
            let got = try reader.read(into: scratch, count: take * type.size)
            guard got == take * type.size else {
                throw truncated(reader, what: what, expected: byteCount, found: done * type.size + got)
            }
            type.convert(UnsafeRawPointer(scratch), count: take, into: out.baseAddress! + done)
            done += take
        }
    }
    return values
}

private func truncated(_ reader: FileReader, what: String, expected: Int, found: Int) -> DataError {
    DataError(
        .truncatedData,
        "\(reader.path): the file ends early: the header promises \(expected) bytes of \(what) but only \(found) follow",
        file: reader.path)
}

/// `a · b · …` for a shape, or `nil` on overflow (a hostile header must not trap).
func checkedProduct(_ values: [Int]) -> Int? {
    var product = 1
    for value in values {
        guard value >= 0 else { return nil }
        let (next, overflow) = product.multipliedReportingOverflow(by: value)
        if overflow { return nil }
        product = next
    }
    return product
}

/// Checks that class labels are integers in range, and returns the class count (the given
/// one, or the largest label + 1).
func validateClassLabels(_ labels: [Float], classCount: Int?, file: String) throws -> Int {
    var largest: Float = -1
    for (i, label) in labels.enumerated() {
        guard label >= 0, label.rounded() == label, label < 1_000_000 else {
            throw DataError(
                .invalidLabel,
                "\(file): label \(label) of sample \(i) is not a class index (an integer in 0..<1000000); load it as a regression target instead",
                file: file)
        }
        largest = max(largest, label)
    }
    let count = classCount ?? (Int(largest) + 1)
    guard count >= 1, Int(largest) < count else {
        throw DataError(
            .invalidLabel, "\(file): label \(Int(largest)) does not fit the \(count) classes requested", file: file)
    }
    return count
}
