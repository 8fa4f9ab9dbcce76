/// A file's bytes in pieces, written and hashed piece by piece without being joined first.
///
/// A model's safetensors file is a short header followed by the model's parameters: held as
/// the header and the parameter vector itself, the file costs no copy of the parameters before
/// it reaches the disk.
public struct FileContents: Sendable {
    /// One piece: bytes, or a range of a `Float` vector as its IEEE-754 little-endian bytes.
    public enum Piece: Sendable {
        case bytes([UInt8])
        case floats([Float], Range<Int>)
    }

    public private(set) var pieces: [Piece] = []
    /// The file's length in bytes.
    public private(set) var count = 0

    public init() {}

    public init(_ bytes: [UInt8]) {
        append(bytes)
    }

    public mutating func append(_ bytes: [UInt8]) {
        pieces.append(.bytes(bytes))
        count += bytes.count
    }

    /// Appends `floats[range]`; the range must lie within `floats`.
    public mutating func append(_ floats: [Float], _ range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= floats.count, "a range outside the vector")
        pieces.append(.floats(floats, range))
        count += range.count * MemoryLayout<Float>.size
    }

    /// Calls `body` with each piece's bytes in order.
    public func forEachBuffer<E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> Void) throws(E) {
        // `withUnsafeBytes` rethrows untyped errors: the typed one is carried out by hand.
        var failure: E?
        for piece in pieces where failure == nil {
            switch piece {
            case .bytes(let bytes):
                bytes.withUnsafeBytes { buffer in
                    do throws(E) { try body(buffer) } catch { failure = error }
                }
            case .floats(let floats, let range):
                #if _endian(little)
                floats.withUnsafeBufferPointer { all in
                    do throws(E) {
                        try body(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: all[range])))
                    } catch {
                        failure = error
                    }
                }
                #else
                let swapped = floats[range].flatMap { value in
                    withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
                }
                swapped.withUnsafeBytes { buffer in
                    do throws(E) { try body(buffer) } catch { failure = error }
                }
                #endif
            }
        }
        if let failure { throw failure }
    }

    /// The whole file as one array.
    public var joined: [UInt8] {
        var file: [UInt8] = []
        file.reserveCapacity(count)
        forEachBuffer { file.append(contentsOf: $0) }
        return file
    }
}
