import NIOCore
import NIOEmbedded
import Testing

@testable import TesseraRuntime

/// The handlers that keep a participant connection's buffers small on the coordinator: they
/// change only how bytes are grouped, never the bytes.
@Suite struct ConnectionBuffersTests {
    /// The client preface, then frames of the given payload lengths (type DATA, stream 1), with
    /// each payload byte derived from its position so that a reordering would show.
    static func connectionBytes(payloads: [Int]) -> [UInt8] {
        var bytes = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        for (index, length) in payloads.enumerated() {
            bytes += [UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), 0, 0, 0, 0, 0, 1]
            bytes += (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
        }
        return bytes
    }

    /// Where each frame ends, as offsets into `connectionBytes(payloads:)`.
    static func frameEnds(payloads: [Int]) -> Set<Int> {
        var ends: Set<Int> = [24]
        var offset = 24
        for length in payloads {
            offset += 9 + length
            ends.insert(offset)
        }
        return ends
    }

    /// Feeds `bytes` to a channel with an aligner, cut at `cuts`, and returns the buffers it
    /// passed on.
    static func align(_ bytes: [UInt8], cutAt cuts: [Int], maximumFrameBytes: Int = 1 << 14) throws -> [[UInt8]] {
        let channel = EmbeddedChannel(handler: HTTP2FrameAligner(maximumFrameBytes: maximumFrameBytes, flushBytes: 1 << 15))
        var start = 0
        for end in cuts + [bytes.count] where end > start {
            try channel.writeInbound(ByteBuffer(bytes: bytes[start..<end]))
            start = end
        }
        var out: [[UInt8]] = []
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { out.append(Array(buffer.readableBytesView)) }
        _ = try channel.finish()
        return out
    }

    @Test func theAlignerPassesOnlyWholeFramesAndEveryByteInOrder() throws {
        let payloads = [0, 5, 16_384, 1, 9_000, 16_384, 3, 12_000]
        let bytes = Self.connectionBytes(payloads: payloads)
        let ends = Self.frameEnds(payloads: payloads)
        var rng = SystemRandomNumberGenerator()
        let cutSets: [[Int]] = [
            [],  // all at once
            Array(stride(from: 1, to: bytes.count, by: 1)).filter { $0 < 200 } + [1000, 20_000],  // byte by byte at first
            Array(stride(from: 7, to: bytes.count, by: 4096)),  // TLS-record-like slices across frame boundaries
            (0..<40).map { _ in Int.random(in: 1..<bytes.count, using: &rng) }.sorted(),
        ]
        for cuts in cutSets {
            let out = try Self.align(bytes, cutAt: cuts)
            #expect(out.flatMap { $0 } == bytes, "cuts \(cuts.prefix(8))…")
            var offset = 0
            for piece in out {
                #expect(!piece.isEmpty)
                offset += piece.count
                // The preface passes as it comes; after it, buffers end only where frames end.
                #expect(offset <= 24 || ends.contains(offset), "a buffer ended at \(offset), inside a frame")
            }
        }
    }

    @Test func aFrameLongerThanTheMaximumTurnsTheAlignmentOffAndReachesHTTP2Unchanged() throws {
        let bytes = Self.connectionBytes(payloads: [10, 40_000, 10])
        let out = try Self.align(bytes, cutAt: [30, 50, 100, 30_000], maximumFrameBytes: 1 << 14)
        #expect(out.flatMap { $0 } == bytes)
        // The preface, then the first frame (ends at 43); the oversized header arrives with the
        // third read (held bytes 43..<50 and 50..<100), and from there on bytes pass as they come.
        #expect(out.map(\.count) == [24, 19, 57, 29_900, bytes.count - 30_000])
    }

    @Test func aTruncatedFrameIsHeldNotPassedOn() throws {
        let bytes = Self.connectionBytes(payloads: [100, 200])
        let out = try Self.align(Array(bytes.dropLast(50)), cutAt: [])
        #expect(out.flatMap { $0 } == Array(bytes.prefix(24 + 109)))
    }

    @Test func theAlignerFlushesEveryFlushBytesWritten() throws {
        let channel = EmbeddedChannel(handler: HTTP2FrameAligner(maximumFrameBytes: 1 << 14, flushBytes: 10_000))
        var flushed: [Int] = []
        func drain() throws {
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { flushed.append(buffer.readableBytes) }
        }
        for _ in 0..<3 { channel.write(ByteBuffer(repeating: 1, count: 4000), promise: nil) }
        try drain()
        // 12 000 bytes written reach the 10 000 bound at the third write: all three are flushed.
        #expect(flushed == [4000, 4000, 4000])
        channel.write(ByteBuffer(repeating: 2, count: 4000), promise: nil)
        try drain()
        #expect(flushed.count == 3, "4000 bytes are below the bound: not flushed yet")
        channel.flush()
        try drain()
        #expect(flushed == [4000, 4000, 4000, 4000])
        _ = try channel.finish()
    }

    /// Records reads and read-completes in order.
    final class Recorder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var events: [String] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            events.append("read \(unwrapInboundIn(data).readableBytes)")
        }
        func channelReadComplete(context: ChannelHandlerContext) { events.append("complete") }
    }

    @Test func theSlicerCutsReadsAndCompletesEachSlice() throws {
        let recorder = Recorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([CiphertextSlicer(sliceBytes: 1000), recorder])
        let bytes = (0..<2500).map { UInt8(truncatingIfNeeded: $0) }
        channel.pipeline.fireChannelRead(NIOAny(ByteBuffer(bytes: bytes)))
        channel.pipeline.fireChannelReadComplete()
        channel.pipeline.fireChannelRead(NIOAny(ByteBuffer(bytes: bytes.prefix(1000))))
        channel.pipeline.fireChannelReadComplete()
        #expect(recorder.events == ["read 1000", "complete", "read 1000", "complete", "read 500", "complete", "read 1000", "complete"])
        _ = try channel.finish()
    }
}
