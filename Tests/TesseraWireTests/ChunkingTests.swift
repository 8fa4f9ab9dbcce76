import Foundation
import SwiftProtobuf
import TesseraCrypto
import TesseraFederation
import TesseraSecAgg
import TesseraSupport
import TesseraWire
import Testing

@Suite("Chunking and reassembly")
struct ChunkingTests {
    static func chunk(_ offset: UInt64, _ total: UInt64, _ values: [Float]) -> (UInt64, UInt64, Data) {
        (offset, total, values.withUnsafeBytes { Data($0) })
    }

    @Test(arguments: [4, 12, 400, 1 << 20], [0, 1, 2, 3, 7, 1001])
    func modelRoundTrip(chunkBytes: Int, count: Int) throws {
        let parameters = Fixtures.parameters(count, seed: 0.3)
        let chunker = ModelChunker(maximumChunkBytes: chunkBytes)
        let chunks = chunker.modelChunks(of: parameters)
        #expect(chunks.count == max(1, (count * 4 + chunkBytes - 1) / chunkBytes))
        var assembler = ChunkAssembler.model(
            digest: chunks.digest, parameterCount: count, maximumChunkBytes: chunkBytes)
        var seen = 0
        for chunk in chunks {
            #expect(chunk.data.count <= chunkBytes)
            #expect(chunk.totalBytes == UInt64(count * 4) && chunk.digest == chunks.digest.hex)
            try assembler.append(try Fixtures.overTheWire(chunk))
            seen += 1
        }
        #expect(seen == chunks.count && assembler.isComplete)
        #expect(try assembler.finish() == parameters)
    }

    @Test func chunkSizeIsRoundedDownToWholeValues() {
        #expect(ModelChunker(maximumChunkBytes: 15).maximumChunkBytes == 12)
        #expect(ModelChunker(maximumChunkBytes: 15).ranges(count: 7) == [0..<3, 3..<6, 6..<7])
        #expect(ModelChunker(maximumChunkBytes: 4).ranges(count: 0) == [0..<0])
    }

    @Test func streamingVerifierHandsOnEveryChunkInOrder() throws {
        let words = (0..<37).map { UInt32($0) * 3 }
        let chunks = ModelChunker(maximumChunkBytes: 20).maskedInputChunks(
            of: .init(roundID: 1, sender: 2, maskedInput: words))
        var verifier = StreamingChunkVerifier<UInt32>(fields: .maskedInputChunk, expectedCount: 37)
        var rebuilt: [UInt32] = []
        for chunk in chunks {
            try verifier.consume(chunk) { range, values in
                #expect(range.lowerBound == rebuilt.count)
                rebuilt.append(contentsOf: values)
            }
        }
        try verifier.finish()
        #expect(rebuilt == words)
    }

    // MARK: Refusals

    func assembler(maxTotal: Int = 1 << 20, maxChunk: Int? = nil, count: Int? = nil) -> ChunkAssembler<Float> {
        ChunkAssembler(
            fields: .modelChunk, maximumTotalBytes: maxTotal, maximumChunkBytes: maxChunk, expectedCount: count)
    }

    func expectRefusal(
        _ code: WireError.Code, field: String? = nil, _ steps: (inout ChunkAssembler<Float>) throws -> Void
    ) {
        var a = assembler()
        let error = #expect(throws: WireError.self) { try steps(&a) }
        #expect(error?.code == code, "\(String(describing: error))")
        if let field { #expect(error?.field == field, "\(String(describing: error))") }
    }

    @Test func refusesAGap() {
        expectRefusal(.chunkOutOfOrder, field: "tessera.v1.ModelChunk.offset") { a in
            try a.append(offset: 0, total: 16, data: Data(count: 4))
            try a.append(offset: 8, total: 16, data: Data(count: 4))
        }
    }

    @Test func refusesARepeatOrOverlap() {
        expectRefusal(.chunkOutOfOrder) { a in
            try a.append(offset: 0, total: 16, data: Data(count: 8))
            try a.append(offset: 4, total: 16, data: Data(count: 8))
        }
        expectRefusal(.chunkOutOfOrder) { a in
            try a.append(offset: 0, total: 16, data: Data(count: 8))
            try a.append(offset: 0, total: 16, data: Data(count: 8))
        }
    }

    @Test func refusesAChunkPastTheTotal() {
        expectRefusal(.chunkOutOfRange, field: "tessera.v1.ModelChunk.data") { a in
            try a.append(offset: 0, total: 8, data: Data(count: 12))
        }
    }

    @Test func refusesAChunkAfterTheLast() {
        expectRefusal(.chunkOutOfRange) { a in
            try a.append(offset: 0, total: 8, data: Data(count: 8))
            try a.append(offset: 8, total: 8, data: Data(count: 4))
        }
    }

    @Test func refusesAChangedTotal() {
        expectRefusal(.chunkOutOfRange, field: "tessera.v1.ModelChunk.total_bytes") { a in
            try a.append(offset: 0, total: 16, data: Data(count: 8))
            try a.append(offset: 8, total: 24, data: Data(count: 8))
        }
    }

    @Test func refusesTotalsAboveTheMaximumBeforeAllocating() {
        // 2^40 bytes would be a terabyte; the check must come before any allocation.
        for total: UInt64 in [(1 << 20) + 4, 1 << 40, UInt64(Int.max) - 3] {
            expectRefusal(.sizeLimitExceeded, field: "tessera.v1.ModelChunk.total_bytes") { a in
                try a.append(offset: 0, total: total, data: Data(count: 4))
            }
        }
        expectRefusal(.valueOutOfRange) { a in try a.append(offset: 0, total: .max, data: Data(count: 4)) }
    }

    @Test func refusesValueCountOverflow() {
        var a = ChunkAssembler<UInt32>(fields: .maskedInputChunk)
        let error = #expect(throws: WireError.self) {
            try a.append(offset: 0, total: UInt64(Int.max / 2), data: Data(count: 4))
        }
        #expect(error?.code == .valueOutOfRange && error?.field == "tessera.v1.MaskedInputChunk.total_words")
    }

    @Test func refusesUnalignedChunksAndTotals() {
        expectRefusal(.chunkOutOfOrder, field: "tessera.v1.ModelChunk.data") { a in
            try a.append(offset: 0, total: 16, data: Data(count: 3))
        }
        expectRefusal(.chunkOutOfOrder, field: "tessera.v1.ModelChunk.offset") { a in
            try a.append(offset: 0, total: 16, data: Data(count: 4))
            try a.append(offset: 6, total: 16, data: Data(count: 4))
        }
        expectRefusal(.valueOutOfRange, field: "tessera.v1.ModelChunk.total_bytes") { a in
            try a.append(offset: 0, total: 10, data: Data(count: 4))
        }
    }

    @Test func aRefusedFirstChunkLeavesTheAssemblerUsable() throws {
        var a = assembler()
        #expect(throws: WireError.self) { try a.append(offset: 0, total: 8, data: Data(count: 3)) }
        try a.append(offset: 0, total: 8, data: Data([0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]))
        #expect(try a.finish() == [1, 2])
    }

    @Test func refusesEmptyChunksOfANonEmptyVector() {
        expectRefusal(.valueOutOfRange) { a in try a.append(offset: 0, total: 8, data: Data()) }
    }

    @Test func refusesOversizedChunks() {
        var a = assembler(maxChunk: 8)
        let error = #expect(throws: WireError.self) { try a.append(offset: 0, total: 16, data: Data(count: 12)) }
        #expect(error?.code == .sizeLimitExceeded && error?.field == "tessera.v1.ModelChunk.data")
    }

    @Test func refusesAnUnexpectedLength() {
        var a = assembler(count: 5)
        let error = #expect(throws: WireError.self) { try a.append(offset: 0, total: 16, data: Data(count: 16)) }
        #expect(error?.code == .parameterCountMismatch)
    }

    @Test func refusesIncompleteStreams() throws {
        var empty = assembler()
        let none = #expect(throws: WireError.self) { _ = try empty.finish() }
        #expect(none?.code == .incompleteStream)

        var partial = assembler()
        try partial.append(offset: 0, total: 16, data: Data(count: 8))
        let error = #expect(throws: WireError.self) { _ = try partial.finish() }
        #expect(error?.code == .incompleteStream)
        #expect(error?.message.contains("2 of 4") == true)
    }

    @Test func refusesADigestMismatch() throws {
        let parameters = Fixtures.parameters(300)
        let chunks = Array(ModelChunker(maximumChunkBytes: 256).modelChunks(of: parameters))
        var tampered = chunks
        tampered[2].data[5] ^= 0x01
        var assembler = ChunkAssembler.model(digest: ModelDigest(parameters: parameters), parameterCount: 300)
        for chunk in tampered { try assembler.append(chunk) }
        let error = #expect(throws: WireError.self) { _ = try assembler.finish() }
        #expect(error?.code == .digestMismatch)

        // The streaming form finds it too, at the end.
        var verifier = StreamingChunkVerifier<Float>(
            fields: .modelChunk, expectedDigest: ModelDigest(parameters: parameters))
        for chunk in tampered {
            try verifier.consume(offset: chunk.offset, total: chunk.totalBytes, data: chunk.data) { _, _ in }
        }
        #expect(throws: WireError.self) { try verifier.finish() }
    }

    @Test func refusesAChunkOfAnotherModel() throws {
        let first = Array(ModelChunker(maximumChunkBytes: 16).modelChunks(of: Fixtures.parameters(8)))
        let other = Array(ModelChunker(maximumChunkBytes: 16).modelChunks(of: Fixtures.parameters(8, seed: 2)))
        var assembler = ChunkAssembler.model(digest: try ModelDigest(hex: first[0].digest))
        try assembler.append(first[0])
        let error = #expect(throws: WireError.self) { try assembler.append(other[1]) }
        #expect(error?.code == .chunkOutOfRange && error?.field == "tessera.v1.ModelChunk.digest")
    }

    // MARK: Large models

    @Test func aMillionParameterModelNeverExceedsTheChunkLimit() throws {
        let limit = WireProtocol.defaultChunkBytes
        let parameters = (0..<1_000_000).map { Float($0 % 1013) * 0.001 }
        let chunks = ModelChunker().modelChunks(of: parameters)
        let expectedChunks = (parameters.count * 4 + limit - 1) / limit
        #expect(chunks.count == expectedChunks)
        var assembler = ChunkAssembler.model(
            digest: chunks.digest, parameterCount: parameters.count, maximumChunkBytes: limit)
        for chunk in chunks {
            let bytes = chunk.wireBytes()
            #expect(chunk.data.count <= limit)
            // The envelope around the payload: digest, offset, total and tags, well under 200 bytes.
            #expect(bytes.count <= limit + 200, "a ModelChunk of \(bytes.count) bytes")
            try assembler.append(try Tessera_V1_ModelChunk(wireBytes: bytes))
        }
        #expect(try assembler.finish() == parameters)

        // The same bound holds for the participant's update and masked input envelopes.
        var encoder = ParticipantEnvelopeEncoder()
        let update = try encoder.encode(
            .update(round: 1, delta: parameters, report: .init(sampleCount: 1, loss: 0, steps: 1)),
            experimentID: Fixtures.experiment, currentStage: .training)
        let masked = try encoder.encode(
            .secAgg(round: 1, .maskedInput(.init(roundID: 1, sender: 1, maskedInput: parameters.map(\.bitPattern)))),
            experimentID: Fixtures.experiment, currentStage: .maskedInput)
        // The update is announced by its TrainingReport, then chunked.
        #expect(update.count == expectedChunks + 1 && masked.count == expectedChunks)
        for envelope in update + masked {
            #expect(envelope.wireBytes().count <= limit + 200)
        }
    }

    // MARK: Digests

    @Test func sha256MatchesTheFIPSVectors() {
        #expect(Hex.encode(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            Hex.encode(SHA256.hash(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        #expect(Hex.encode(SHA256.hash(long)) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var incremental = SHA256()
        incremental.update(Array(long[0..<10]))
        incremental.update(Array(long[10...]))
        #expect(incremental.finalize() == SHA256.hash(long))
    }

    @Test func modelDigestIsTheSHA256OfLittleEndianFloats() throws {
        let parameters: [Float] = [1, -2.5, .pi]
        var bytes: [UInt8] = []
        for p in parameters { withUnsafeBytes(of: p.bitPattern.littleEndian) { bytes += $0 } }
        let digest = ModelDigest(parameters: parameters)
        #expect(digest.bytes == SHA256.hash(bytes))
        #expect(try ModelDigest(hex: digest.hex.uppercased()) == digest)
        #expect(ModelDigest(bytes: digest.bytes) == digest && ModelDigest(bytes: [1, 2]) == nil)
        for bad in ["", "abc", String(repeating: "g", count: 64), String(digest.hex.dropLast())] {
            let error = #expect(throws: WireError.self) {
                _ = try ModelDigest(hex: bad, field: "tessera.v1.TrainTask.model_digest")
            }
            #expect(error?.code == .valueOutOfRange && error?.field == "tessera.v1.TrainTask.model_digest")
        }
    }
}
