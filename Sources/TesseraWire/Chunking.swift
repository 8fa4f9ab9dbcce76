public import Foundation
import TesseraCrypto
public import TesseraSecAgg
import TesseraSupport

// Models, plaintext updates and masked inputs are vectors of 4-byte values that can be far
// larger than one protobuf message should be. They travel as ordered chunks; this file splits
// vectors into chunks (`ModelChunker`) and checks and reassembles them (`StreamingChunkVerifier`,
// `ChunkAssembler`).

// MARK: - Values

/// A 4-byte value that travels as its little-endian bit pattern: float32 parameters and
/// updates, uint32 SecAgg words.
public protocol FourByteValue: Sendable {
    init(wireBits: UInt32)
    var wireBits: UInt32 { get }
}

extension Float: FourByteValue {
    public init(wireBits: UInt32) { self.init(bitPattern: wireBits) }
    public var wireBits: UInt32 { bitPattern }
}

extension UInt32: FourByteValue {
    public init(wireBits: UInt32) { self = wireBits }
    public var wireBits: UInt32 { self }
}

/// Little-endian packing. On little-endian hosts (every platform Tessera runs on today) both
/// directions are one memory copy; the byte-swapping path keeps the format defined elsewhere.
enum LittleEndian {
    static func encode<Value: FourByteValue>(_ values: ArraySlice<Value>) -> Data {
        #if _endian(little)
        return values.withUnsafeBytes { Data($0) }
        #else
        var data = Data(capacity: values.count * 4)
        for value in values { withUnsafeBytes(of: value.wireBits.littleEndian) { data.append(contentsOf: $0) } }
        return data
        #endif
    }

    /// Copies `data` (exactly `destination.count × 4` bytes) into `destination`. `data` may be
    /// unaligned (protobuf gives no alignment guarantee), so it is copied as raw bytes.
    static func decode<Value: FourByteValue>(_ data: Data, into destination: UnsafeMutableBufferPointer<Value>) {
        precondition(data.count == destination.count * 4)
        guard !destination.isEmpty else { return }
        data.withUnsafeBytes { source in
            UnsafeMutableRawBufferPointer(destination).copyMemory(from: source)
        }
        #if !_endian(little)
        for i in destination.indices {
            destination[i] = Value(wireBits: UInt32(littleEndian: destination[i].wireBits))
        }
        #endif
    }
}

// MARK: - Field names

/// Which chunk message a verifier reads, for its error messages and its unit: `ModelChunk`
/// counts offsets and totals in bytes, the two update chunks in 4-byte values.
public struct ChunkFields: Sendable, Hashable {
    /// The protobuf message, e.g. `ModelChunk`.
    public var message: String
    public var offset: String
    public var total: String
    public var data: String
    /// What the vector is, for people: "model", "plaintext update", "masked input".
    public var what: String
    /// `true`: offsets and totals count 4-byte values; `false`: they count bytes.
    public var countsValues: Bool

    public static let modelChunk = ChunkFields(
        message: "ModelChunk", offset: "offset", total: "total_bytes", data: "data", what: "model", countsValues: false)
    public static let plaintextUpdateChunk = ChunkFields(
        message: "PlaintextUpdateChunk", offset: "offset_values", total: "total_values", data: "values",
        what: "plaintext update", countsValues: true)
    public static let maskedInputChunk = ChunkFields(
        message: "MaskedInputChunk", offset: "offset_words", total: "total_words", data: "words",
        what: "masked input", countsValues: true)

    func path(_ name: String) -> String { wireField(message, name) }
}

// MARK: - Verifying a chunk stream

/// Checks a stream of chunks of one vector without holding the vector, and hands each verified
/// chunk's values to the caller.
///
/// This is what lets the coordinator keep memory O(model) however many participants send at
/// once: it adds each participant's masked-input chunk into the round's running sum as the
/// chunk arrives, and keeps only this small cursor per participant.
///
/// Every chunk is checked before its values are handed on:
/// - the announced total fits `Int`, is whole 4-byte values, is at most `maximumTotalBytes`
///   (checked on the first chunk, before anybody allocates for it), equals `expectedCount` if
///   one is given, and is the same in every chunk;
/// - the chunk is at most `maximumChunkBytes`, whole values, and not empty (except the single
///   chunk of an empty vector);
/// - it starts exactly where the previous one ended (a repeat, an overlap or a gap is refused)
///   and does not reach past the total;
/// - no chunk follows the last one.
///
/// With an `expectedDigest`, ``finish()`` also checks the SHA-256 of all bytes. That can only
/// happen at the end, so a consumer of the streaming form must treat what it received as
/// provisional until `finish()` returns; use ``ChunkAssembler`` when nothing may be used before
/// the digest is verified.
public struct StreamingChunkVerifier<Value: FourByteValue>: Sendable {
    public let fields: ChunkFields
    public let maximumTotalBytes: Int
    public let maximumChunkBytes: Int?
    public let expectedCount: Int?
    public let expectedDigest: ModelDigest?

    /// The vector length the first chunk announced, in values.
    public private(set) var totalCount: Int?
    /// Values received and verified so far.
    public private(set) var receivedCount = 0
    private var hasher: SHA256?
    private var finished = false

    /// - Parameters:
    ///   - maximumTotalBytes: the largest vector accepted, in bytes.
    ///   - maximumChunkBytes: the largest chunk payload accepted; `nil` leaves it to the
    ///     transport's message limit.
    ///   - expectedCount: the length the vector must have, in values (the model's parameter
    ///     count, the SecAgg vector length); `nil` accepts any length within the maximum.
    ///   - expectedDigest: the SHA-256 the bytes must hash to, checked by ``finish()``.
    public init(
        fields: ChunkFields, maximumTotalBytes: Int = WireProtocol.defaultMaximumVectorBytes,
        maximumChunkBytes: Int? = nil, expectedCount: Int? = nil, expectedDigest: ModelDigest? = nil
    ) {
        self.fields = fields
        self.maximumTotalBytes = maximumTotalBytes
        self.maximumChunkBytes = maximumChunkBytes
        self.expectedCount = expectedCount
        self.expectedDigest = expectedDigest
        self.hasher = expectedDigest == nil ? nil : SHA256()
    }

    /// `true` once every announced value has arrived.
    public var isComplete: Bool { totalCount.map { $0 == receivedCount } ?? false }

    /// Checks one chunk and returns the range of values it covers.
    mutating func admit(offset: UInt64, total: UInt64, data: Data) throws(WireError) -> Range<Int> {
        guard !finished, !isComplete else {
            throw WireError(
                code: .chunkOutOfRange,
                message:
                    "a \(fields.what) chunk arrived after the last one (all \(totalCount ?? 0) values were already received).",
                field: fields.path(fields.offset))
        }
        let totalValues = try checkedInt(total, fields.path(fields.total))
        let totalBytes = try bytes(totalValues, field: fields.total)
        if let established = totalCount {
            guard totalBytes == established * 4 else {
                throw WireError(
                    code: .chunkOutOfRange,
                    message:
                        "the \(fields.what) stream changed its total from \(established * 4) to \(totalBytes) bytes half way.",
                    field: fields.path(fields.total))
            }
        } else {
            guard totalBytes % 4 == 0 else {
                throw WireError.outOfRange(
                    fields.path(fields.total), "\(totalBytes) bytes is not a whole number of 4-byte values.")
            }
            guard totalBytes <= maximumTotalBytes else {
                throw WireError(
                    code: .sizeLimitExceeded,
                    message:
                        "the \(fields.what) announces \(totalBytes) bytes; this receiver accepts at most \(maximumTotalBytes).",
                    field: fields.path(fields.total))
            }
            if let expectedCount, totalBytes / 4 != expectedCount {
                throw WireError(
                    code: .parameterCountMismatch,
                    message: "the \(fields.what) has \(totalBytes / 4) values; \(expectedCount) were expected.",
                    field: fields.path(fields.total))
            }
            totalCount = totalBytes / 4
        }
        let total = totalCount!

        if let maximumChunkBytes, data.count > maximumChunkBytes {
            throw WireError(
                code: .sizeLimitExceeded,
                message: "a \(fields.what) chunk carries \(data.count) bytes; the limit is \(maximumChunkBytes).",
                field: fields.path(fields.data))
        }
        guard data.count % 4 == 0 else {
            throw WireError(
                code: .chunkOutOfOrder,
                message: "a \(fields.what) chunk carries \(data.count) bytes, not a whole number of 4-byte values.",
                field: fields.path(fields.data))
        }
        guard !data.isEmpty || total == 0 else {
            throw WireError.outOfRange(
                fields.path(fields.data), "a \(fields.what) chunk must carry at least one value.")
        }

        let offsetNumber = try checkedInt(offset, fields.path(fields.offset))
        let offsetBytes = try bytes(offsetNumber, field: fields.offset)
        guard offsetBytes % 4 == 0 else {
            throw WireError(
                code: .chunkOutOfOrder,
                message: "a \(fields.what) chunk starts at byte \(offsetBytes), inside a 4-byte value.",
                field: fields.path(fields.offset))
        }
        let start = offsetBytes / 4
        guard start == receivedCount else {
            let problem = start < receivedCount ? "repeats or overlaps values already received" : "leaves a gap"
            throw WireError(
                code: .chunkOutOfOrder,
                message:
                    "a \(fields.what) chunk starts at value \(start) but the next expected is \(receivedCount): it \(problem).",
                field: fields.path(fields.offset))
        }
        let count = data.count / 4
        guard count <= total - start else {
            throw WireError(
                code: .chunkOutOfRange,
                message:
                    "a \(fields.what) chunk covers values \(start)..<\(start + count), past the total of \(total).",
                field: fields.path(fields.data))
        }
        if hasher != nil { data.withUnsafeBytes { hasher!.update($0) } }
        receivedCount += count
        return start..<(start + count)
    }

    /// Byte count of `number` in this stream's unit, refusing products that overflow.
    private func bytes(_ number: Int, field: String) throws(WireError) -> Int {
        guard fields.countsValues else { return number }
        let (product, overflow) = number.multipliedReportingOverflow(by: 4)
        guard !overflow else {
            throw WireError.outOfRange(
                fields.path(field), "\(number) values do not fit in memory (\(number) × 4 bytes overflows).")
        }
        return product
    }

    /// Verifies one chunk and passes its values, with their position in the vector, to
    /// `consume`. Nothing is passed on for a chunk that fails a check.
    public mutating func consume(
        offset: UInt64, total: UInt64, data: Data,
        _ consume: (_ range: Range<Int>, _ values: UnsafeBufferPointer<Value>) -> Void
    ) throws(WireError) {
        let range = try admit(offset: offset, total: total, data: data)
        let values = [Value](unsafeUninitializedCapacity: range.count) { buffer, initialised in
            LittleEndian.decode(data, into: buffer)
            initialised = range.count
        }
        values.withUnsafeBufferPointer { consume(range, $0) }
    }

    /// Declares the stream over: refuses it if a value is missing or, with an expected
    /// digest, if the bytes do not hash to it. Call it exactly once, when the sender says the
    /// stream is done (the RPC ended, or the last chunk arrived).
    public mutating func finish() throws(WireError) {
        guard let total = totalCount else {
            throw WireError(
                code: .incompleteStream, message: "the \(fields.what) stream ended before its first chunk.",
                field: fields.path(fields.data))
        }
        guard receivedCount == total else {
            throw WireError(
                code: .incompleteStream,
                message: "the \(fields.what) stream ended after \(receivedCount) of \(total) values.",
                field: fields.path(fields.data))
        }
        guard !finished else { return }
        finished = true
        if let expectedDigest, var hasher {
            // Dropped before finishing, so the hasher's context is not shared (and not duplicated).
            self.hasher = nil
            let actual = hasher.finalize()
            guard actual == expectedDigest.bytes else {
                throw WireError(
                    code: .digestMismatch,
                    message:
                        "the \(fields.what) bytes hash to \(Hex.encode(actual)), not the requested \(expectedDigest.hex).",
                    field: fields.path(fields.data))
            }
        }
    }
}

// MARK: - Reassembling

/// Reassembles a chunk stream into one array, with every check of ``StreamingChunkVerifier``.
///
/// The array is allocated once, at the size the first chunk announces, and only after that
/// size has passed the limit and expected-count checks: a peer cannot make the receiver
/// allocate more than it configured by claiming a huge total. ``finish()`` returns the values
/// only when the stream is complete and (with an expected digest) verified.
public struct ChunkAssembler<Value: FourByteValue>: Sendable {
    private var verifier: StreamingChunkVerifier<Value>
    private var values: [Value] = []

    public init(
        fields: ChunkFields, maximumTotalBytes: Int = WireProtocol.defaultMaximumVectorBytes,
        maximumChunkBytes: Int? = nil, expectedCount: Int? = nil, expectedDigest: ModelDigest? = nil
    ) {
        verifier = StreamingChunkVerifier(
            fields: fields, maximumTotalBytes: maximumTotalBytes, maximumChunkBytes: maximumChunkBytes,
            expectedCount: expectedCount, expectedDigest: expectedDigest)
    }

    public var fields: ChunkFields { verifier.fields }
    public var isComplete: Bool { verifier.isComplete }
    public var totalCount: Int? { verifier.totalCount }
    public var receivedCount: Int { verifier.receivedCount }

    /// Checks and stores one chunk.
    public mutating func append(offset: UInt64, total: UInt64, data: Data) throws(WireError) {
        let range = try verifier.admit(offset: offset, total: total, data: data)
        // Allocated on the first chunk that passes every check (a refused first chunk may
        // already have fixed the total, so "first" is judged by the buffer, not the total).
        if values.count != verifier.totalCount! {
            values = [Value](repeating: Value(wireBits: 0), count: verifier.totalCount!)
        }
        values.withUnsafeMutableBufferPointer { all in
            LittleEndian.decode(data, into: UnsafeMutableBufferPointer(rebasing: all[range]))
        }
    }

    /// The whole vector, once complete and verified.
    public mutating func finish() throws(WireError) -> [Value] {
        try verifier.finish()
        let result = values
        values = []
        return result
    }
}

extension ChunkAssembler where Value == Float {
    /// An assembler for the model named `digest`, as fetched from `ModelStore`.
    public static func model(
        digest: ModelDigest, parameterCount: Int? = nil,
        maximumTotalBytes: Int = WireProtocol.defaultMaximumVectorBytes,
        maximumChunkBytes: Int? = nil
    ) -> ChunkAssembler<Float> {
        ChunkAssembler(
            fields: .modelChunk, maximumTotalBytes: maximumTotalBytes, maximumChunkBytes: maximumChunkBytes,
            expectedCount: parameterCount, expectedDigest: digest)
    }

    /// Checks and stores one `ModelChunk`, including that it names the digest requested.
    public mutating func append(_ chunk: Tessera_V1_ModelChunk) throws(WireError) {
        if let expected = verifier.expectedDigest {
            let named = try ModelDigest(hex: chunk.digest, field: wireField("ModelChunk", "digest"))
            guard named == expected else {
                throw WireError(
                    code: .chunkOutOfRange,
                    message: "a chunk of model \(named) arrived in the stream of model \(expected).",
                    field: wireField("ModelChunk", "digest"))
            }
        }
        try append(offset: chunk.offset, total: chunk.totalBytes, data: chunk.data)
    }

    /// Checks and stores one `PlaintextUpdateChunk`.
    public mutating func append(_ chunk: Tessera_V1_PlaintextUpdateChunk) throws(WireError) {
        try append(offset: chunk.offsetValues, total: chunk.totalValues, data: chunk.values)
    }
}

extension ChunkAssembler where Value == UInt32 {
    /// Checks and stores one `MaskedInputChunk` (its round and sender are the caller's to check).
    public mutating func append(_ chunk: Tessera_V1_MaskedInputChunk) throws(WireError) {
        try append(offset: chunk.offsetWords, total: chunk.totalWords, data: chunk.words)
    }
}

extension StreamingChunkVerifier where Value == UInt32 {
    /// Verifies one `MaskedInputChunk` and passes its words to `consume` (its round and sender
    /// are the caller's to check).
    public mutating func consume(
        _ chunk: Tessera_V1_MaskedInputChunk,
        _ consume: (_ range: Range<Int>, _ words: UnsafeBufferPointer<UInt32>) -> Void
    ) throws(WireError) {
        try self.consume(offset: chunk.offsetWords, total: chunk.totalWords, data: chunk.words, consume)
    }
}

// MARK: - Splitting

/// Splits vectors into chunks of at most ``maximumChunkBytes`` payload bytes.
///
/// An empty vector still yields one (empty) chunk, so the receiver learns that the total is 0
/// instead of waiting for a chunk that never comes.
public struct ModelChunker: Sendable {
    /// The largest payload of one chunk, a multiple of 4.
    public let maximumChunkBytes: Int

    /// `maximumChunkBytes` is rounded down to whole 4-byte values and must allow at least one.
    public init(maximumChunkBytes: Int = WireProtocol.defaultChunkBytes) {
        precondition(maximumChunkBytes >= 4, "ModelChunker: a chunk must hold at least one 4-byte value")
        self.maximumChunkBytes = maximumChunkBytes & ~3
    }

    /// Values per chunk.
    public var valuesPerChunk: Int { maximumChunkBytes / 4 }

    /// The chunk ranges of a vector of `count` values (at least one range).
    public func ranges(count: Int) -> [Range<Int>] {
        guard count > 0 else { return [0..<0] }
        return stride(from: 0, to: count, by: valuesPerChunk).map { $0..<min($0 + valuesPerChunk, count) }
    }

    /// The `ModelChunk`s of `parameters`, produced lazily (one chunk's bytes at a time), so a
    /// model store streaming a large model holds one encoded chunk, not an encoded copy of the
    /// model. Pass `digest` when it is already known (the store keeps it), to avoid rehashing.
    public func modelChunks(of parameters: [Float], digest: ModelDigest? = nil) -> ModelChunks {
        ModelChunks(parameters: parameters, digest: digest ?? ModelDigest(parameters: parameters), chunker: self)
    }

    /// The `PlaintextUpdateChunk`s of an update.
    public func updateChunks(of delta: [Float]) -> [Tessera_V1_PlaintextUpdateChunk] {
        ranges(count: delta.count).map { range in
            var chunk = Tessera_V1_PlaintextUpdateChunk()
            chunk.totalValues = UInt64(delta.count)
            chunk.offsetValues = UInt64(range.lowerBound)
            chunk.values = LittleEndian.encode(delta[range])
            return chunk
        }
    }

    /// The `MaskedInputChunk`s of a masked-input message.
    public func maskedInputChunks(of message: MaskedInputMessage) -> [Tessera_V1_MaskedInputChunk] {
        let words = message.maskedInput
        return ranges(count: words.count).map { range in
            var chunk = Tessera_V1_MaskedInputChunk()
            chunk.secaggRoundID = message.roundID
            chunk.sender = message.sender
            chunk.totalWords = UInt64(words.count)
            chunk.offsetWords = UInt64(range.lowerBound)
            chunk.words = LittleEndian.encode(words[range])
            return chunk
        }
    }
}

/// The chunks of one model, made on demand. Iterating twice encodes twice; the digest is
/// computed once, when the sequence is made.
public struct ModelChunks: Sequence, Sendable {
    public let parameters: [Float]
    public let digest: ModelDigest
    public let chunker: ModelChunker

    /// The size of the model's encoding in bytes.
    public var totalBytes: Int { parameters.count * 4 }
    /// How many chunks iteration yields.
    public var count: Int { chunker.ranges(count: parameters.count).count }
    public var underestimatedCount: Int { count }

    public struct Iterator: IteratorProtocol {
        let chunks: ModelChunks
        let digestHex: String
        var ranges: IndexingIterator<[Range<Int>]>

        public mutating func next() -> Tessera_V1_ModelChunk? {
            guard let range = ranges.next() else { return nil }
            var chunk = Tessera_V1_ModelChunk()
            chunk.digest = digestHex
            chunk.offset = UInt64(range.lowerBound * 4)
            chunk.totalBytes = UInt64(chunks.totalBytes)
            chunk.data = LittleEndian.encode(chunks.parameters[range])
            return chunk
        }
    }

    public func makeIterator() -> Iterator {
        Iterator(chunks: self, digestHex: digest.hex, ranges: chunker.ranges(count: parameters.count).makeIterator())
    }
}

// MARK: - Fetching a model under flow control

extension Tessera_V1_FetchModelMessage {
    /// The first message of a fetch: the model, and how many bytes may be in flight.
    public static func request(digest: ModelDigest, windowBytes: Int) -> Self {
        var message = Self()
        message.request.digest = digest.hex
        message.request.windowBytes = UInt64(max(0, windowBytes))
        return message
    }

    /// A later message: `bytes` more taken in by the receiver.
    public static func credit(_ bytes: Int) -> Self {
        var message = Self()
        message.creditBytes = UInt64(max(0, bytes))
        return message
    }
}

/// A model store's reading of a fetch's first message.
public struct ModelFetchRequest: Sendable, Hashable {
    public var digest: ModelDigest
    /// The window granted: what the receiver asked for (its default when 0), at least one chunk
    /// so that the stream can always move, at most ``WireProtocol/maximumModelWindowBytes``.
    public var windowBytes: Int

    public init(_ message: Tessera_V1_FetchModelMessage, maximumChunkBytes: Int) throws(WireError) {
        guard case .request(let request)? = message.body else {
            throw WireError(
                code: .unexpectedMessage,
                message: "a model fetch must open with its request (FetchModelMessage.request).",
                field: wireField("FetchModelMessage", "request"))
        }
        digest = try ModelDigest(hex: request.digest, field: wireField("FetchModelRequest", "digest"))
        let asked = request.windowBytes == 0 ? WireProtocol.modelWindowBytes : Int(clamping: request.windowBytes)
        windowBytes = min(max(asked, maximumChunkBytes), max(WireProtocol.maximumModelWindowBytes, maximumChunkBytes))
    }

    /// The bytes a later message credits back.
    public static func credit(of message: Tessera_V1_FetchModelMessage) throws(WireError) -> Int {
        guard case .creditBytes(let bytes)? = message.body else {
            throw WireError(
                code: .unexpectedMessage,
                message: "after its request, a model fetch sends only credits (FetchModelMessage.credit_bytes).",
                field: wireField("FetchModelMessage", "credit_bytes"))
        }
        return Int(clamping: bytes)
    }
}
