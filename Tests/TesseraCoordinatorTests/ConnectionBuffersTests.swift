import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import TesseraCoordinator

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
        let channel = EmbeddedChannel(
            handler: HTTP2FrameAligner(maximumFrameBytes: maximumFrameBytes, flushBytes: 1 << 15))
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
            // Byte by byte at first.
            Array(stride(from: 1, to: bytes.count, by: 1)).filter { $0 < 200 } + [1000, 20_000],
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

    @Test func writesReachTLSInFlushedPiecesOfAtMostFlushBytes() throws {
        let channel = EmbeddedChannel(handler: HTTP2FrameAligner(maximumFrameBytes: 1 << 14, flushBytes: 10_000))
        var flushed: [Int] = []
        var bytesOut: [UInt8] = []
        func drain() throws {
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
                flushed.append(buffer.readableBytes)
                bytesOut += buffer.readableBytesView
            }
        }
        var bytesIn: [UInt8] = []
        func write(_ count: Int) -> EventLoopFuture<Void> {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: bytesIn.count + $0 * 7) }
            bytesIn += bytes
            let promise = channel.eventLoop.makePromise(of: Void.self)
            channel.write(ByteBuffer(bytes: bytes), promise: promise)
            return promise.futureResult
        }
        _ = write(4000)
        _ = write(4000)
        try drain()
        #expect(flushed.isEmpty, "8000 bytes are below the bound: not flushed yet")
        let third = write(4000)
        try drain()
        // The third write fills the bound with its first 2000 bytes: those are flushed with the
        // first two writes, and its other 2000 wait.
        #expect(flushed == [4000, 4000, 2000])
        let large = write(25_000)
        let completed = Mutex<[String]>([])
        third.whenSuccess { completed.withLock { $0.append("third") } }
        large.whenSuccess { completed.withLock { $0.append("large") } }
        try drain()
        // 2000 waiting + 8000, then 10 000, then 7000 that wait.
        #expect(flushed == [4000, 4000, 2000, 2000, 8000, 10_000])
        #expect(completed.withLock { $0 } == ["third"], "the large write's last piece is not sent yet")
        _ = write(3000)  // 7000 + 3000 reaches the bound exactly: flushed
        try drain()
        #expect(flushed == [4000, 4000, 2000, 2000, 8000, 10_000, 7000, 3000])
        #expect(completed.withLock { $0 } == ["third", "large"])
        channel.write(ByteBuffer(repeating: 9, count: 10), promise: nil)
        channel.flush()
        bytesIn += [UInt8](repeating: 9, count: 10)
        try drain()
        #expect(flushed.last == 10)
        #expect(flushed.allSatisfy { $0 <= 10_000 } && bytesOut == bytesIn)
        _ = try channel.finish()
    }

    /// Records reads (with their bytes) and read-completes in order.
    final class Recorder: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        var events: [String] = []
        var bytes: [UInt8] = []
        /// Where each group of reads between two read-completes ended, as offsets into `bytes`.
        var groupEnds: [Int] = []
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            events.append("read \(buffer.readableBytes)")
            bytes += buffer.readableBytesView
        }
        func channelReadComplete(context: ChannelHandlerContext) {
            events.append("complete")
            groupEnds.append(bytes.count)
        }
    }

    /// TLS records (application data, TLS 1.2 on the wire) with bodies of the given lengths,
    /// each byte derived from its position; and where each record ends.
    static func records(bodies: [Int]) -> (bytes: [UInt8], ends: [Int]) {
        var bytes: [UInt8] = []
        var ends: [Int] = []
        for (index, length) in bodies.enumerated() {
            bytes += [0x17, 0x03, 0x03, UInt8(length >> 8), UInt8(length & 0xFF)]
            bytes += (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ index) }
            ends.append(bytes.count)
        }
        return (bytes, ends)
    }

    /// Feeds `bytes` through a slicer, cut at `cuts`, with a read-complete after every
    /// `readsPerPass` reads and after the last, as a channel does.
    static func slice(_ bytes: [UInt8], cutAt cuts: [Int], readsPerPass: Int = 1) throws -> Recorder {
        let recorder = Recorder()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([CiphertextSlicer(), recorder])
        var start = 0
        var reads = 0
        for end in cuts + [bytes.count] where end > start {
            channel.pipeline.fireChannelRead(ByteBuffer(bytes: bytes[start..<end]))
            reads += 1
            if reads % readsPerPass == 0 || end == bytes.count { channel.pipeline.fireChannelReadComplete() }
            start = end
        }
        _ = try channel.finish()
        return recorder
    }

    @Test func theSlicerCompletesEveryRecordAndNeverPassesTwoInOneGroup() throws {
        let (bytes, ends) = Self.records(bodies: [16_406, 3, 16_406, 0, 120, 16_384, 1, 9_000])
        var rng = SystemRandomNumberGenerator()
        let cutSets: [[Int]] = [
            [],  // all at once
            Array(1..<40) + [16_411, 16_412, 16_413],  // byte by byte through the first header, headers split
            Array(stride(from: 8192, to: bytes.count, by: 8192)),
            Array(stride(from: 3, to: bytes.count, by: 16_384)),
            ends.dropLast(),  // reads that end exactly where records end
            (0..<30).map { _ in Int.random(in: 1..<bytes.count, using: &rng) }.sorted(),
        ]
        for cuts in cutSets {
            for readsPerPass in [1, 2, 3] {
                let recorder = try Self.slice(bytes, cutAt: cuts, readsPerPass: readsPerPass)
                #expect(recorder.bytes == bytes, "cuts \(cuts.prefix(8))…")
                // Every record's end is followed by a read-complete before any byte of the next one.
                #expect(Set(ends).isSubset(of: Set(recorder.groupEnds)), "cuts \(cuts.prefix(8))…")
                // No group between two read-completes holds the end of two records.
                var start = 0
                for end in recorder.groupEnds {
                    #expect(ends.filter { $0 > start && $0 <= end }.count <= 1, "group \(start)..<\(end)")
                    start = end
                }
            }
        }
    }

    @Test func theSlicerPassesEachRecordWholeWhenItArrivesWhole() throws {
        let (bytes, _) = Self.records(bodies: [100, 50])
        // Both records and the header of a third in one read, then the third's body.
        let third = Self.records(bodies: [0, 0, 10]).bytes.suffix(15)
        let recorder = try Self.slice(bytes + third, cutAt: [bytes.count + 5])
        #expect(
            recorder.events == [
                "read 105", "complete", "read 55", "complete", "read 5", "complete", "read 10", "complete",
            ])
    }
}
