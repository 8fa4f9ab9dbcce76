/// Little-endian writer for the SecAgg wire encoding.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ value: UInt8) { bytes.append(value) }

    mutating func u32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func u64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Raw bytes of a known fixed size (the reader checks the size).
    mutating func raw(_ value: [UInt8]) { bytes.append(contentsOf: value) }

    /// `u32 count || bytes`.
    mutating func blob(_ value: [UInt8]) {
        u32(UInt32(truncatingIfNeeded: value.count))
        bytes.append(contentsOf: value)
    }

    /// `u32 count || u32 words…`, copied in one block on little-endian hosts.
    mutating func words(_ value: [UInt32]) {
        u32(UInt32(truncatingIfNeeded: value.count))
        #if _endian(little)
        value.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
        for word in value { u32(word) }
        #endif
    }

    /// `u32 count || u32 ids…`.
    mutating func ids(_ value: [UInt32]) { words(value) }
}

/// Bounds-checked little-endian reader. Every read checks the remaining length first, and
/// every count is checked against the bytes that remain *before* anything is allocated, so
/// a hostile length field can neither crash the decoder nor make it allocate gigabytes.
struct ByteReader {
    private let bytes: [UInt8]
    private(set) var offset: Int = 0
    /// What is being decoded, for error messages.
    let context: String

    init(_ bytes: [UInt8], context: String) {
        self.bytes = bytes
        self.context = context
    }

    var remaining: Int { bytes.count - offset }

    private func truncated(_ what: String, need: Int) -> SecAggError {
        SecAggError(
            code: .truncatedMessage,
            message:
                "\(context): the bytes end inside \(what) (need \(need) more bytes at offset \(offset), \(remaining) remain)."
        )
    }

    mutating func u8(_ what: String) throws(SecAggError) -> UInt8 {
        guard remaining >= 1 else { throw truncated(what, need: 1) }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u32(_ what: String) throws(SecAggError) -> UInt32 {
        guard remaining >= 4 else { throw truncated(what, need: 4) }
        var value: UInt32 = 0
        for index in 0..<4 { value |= UInt32(bytes[offset + index]) << (8 * UInt32(index)) }
        offset += 4
        return value
    }

    mutating func u64(_ what: String) throws(SecAggError) -> UInt64 {
        guard remaining >= 8 else { throw truncated(what, need: 8) }
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
        offset += 8
        return value
    }

    mutating func raw(_ count: Int, _ what: String) throws(SecAggError) -> [UInt8] {
        guard remaining >= count else { throw truncated(what, need: count) }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }

    /// A count of elements that each take at least `minimumElementSize` bytes; rejects a count
    /// the remaining bytes cannot possibly hold.
    mutating func count(_ what: String, minimumElementSize: Int) throws(SecAggError) -> Int {
        let count = Int(try u32("the element count of \(what)"))
        guard count <= remaining / max(1, minimumElementSize) else {
            throw SecAggError(
                code: .truncatedMessage,
                message: "\(context): \(what) announces \(count) elements, but only \(remaining) bytes remain.")
        }
        return count
    }

    mutating func blob(_ what: String, maximum: Int = .max) throws(SecAggError) -> [UInt8] {
        let count = try self.count(what, minimumElementSize: 1)
        guard count <= maximum else {
            throw SecAggError(
                code: .malformedMessage,
                message: "\(context): \(what) is \(count) bytes, more than the \(maximum) allowed.")
        }
        return try raw(count, what)
    }

    mutating func words(_ what: String) throws(SecAggError) -> [UInt32] {
        let count = try self.count(what, minimumElementSize: 4)
        let start = offset
        offset += 4 * count
        #if _endian(little)
        return [UInt32](unsafeUninitializedCapacity: count) { buffer, initialised in
            bytes.withUnsafeBytes { raw in
                let source = UnsafeRawBufferPointer(rebasing: raw[start..<(start + 4 * count)])
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: source)
            }
            initialised = count
        }
        #else
        return (0..<count).map { index in
            var value: UInt32 = 0
            for b in 0..<4 { value |= UInt32(bytes[start + 4 * index + b]) << (8 * UInt32(b)) }
            return value
        }
        #endif
    }

    /// A list of participant ids that must be strictly increasing (sorted, no duplicates)
    /// and non-zero: lists are sets, and one canonical encoding per set keeps signatures over
    /// them unambiguous.
    mutating func ids(_ what: String) throws(SecAggError) -> [UInt32] {
        let ids = try words(what)
        var previous: UInt32 = 0
        for id in ids {
            guard id > previous else {
                throw SecAggError(
                    code: .malformedMessage,
                    message: "\(context): \(what) must list non-zero participant ids in strictly increasing order.")
            }
            previous = id
        }
        return ids
    }

    /// Throws ``SecAggError/Code-swift.struct/trailingBytes`` unless everything was consumed.
    func finish() throws(SecAggError) {
        guard remaining == 0 else {
            throw SecAggError(
                code: .trailingBytes,
                message: "\(context): \(remaining) unexpected bytes follow the end of the message (oversized input).")
        }
    }
}
