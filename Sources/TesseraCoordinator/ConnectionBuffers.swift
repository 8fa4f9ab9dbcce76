import NIOCore
import NIOSSL

/// Keeps the buffers that each participant connection holds on the coordinator small.
///
/// Three buffers of the NIO stack keep, per connection and for as long as it lives, the size of
/// the largest burst the connection has carried:
/// - TLS decrypts everything a read pass brought in into one plaintext buffer (up to 4 reads of
///   64 KiB by default) and reuses that buffer;
/// - the HTTP/2 frame decoder appends each plaintext buffer it gets to its own, and only starts
///   again from the beginning once a buffer ends exactly on a frame boundary. While buffers keep
///   ending inside a frame it grows by all that arrives;
/// - TLS encrypts everything written between two flushes into one buffer (a model window).
///
/// Together they were most of the coordinator's growth from 10 sites to 100. So every accepted
/// connection gets:
/// - reads of at most ``readBytes``, ``readsPerPass`` per event-loop pass;
/// - a ``CiphertextSlicer`` in front of TLS, which hands it one record at a time followed by a
///   read-complete, so TLS passes each record's plaintext on before it decrypts the next;
/// - an ``HTTP2FrameAligner`` between TLS and HTTP/2, which passes on only whole frames, so the
///   frame decoder empties its buffer every time; and which cuts what is written into pieces of
///   at most ``flushBytes``, each flushed, so TLS encrypts at most that much at once.
///
///
/// The bounds cost a little round time (smaller reads, slices and flushes) for a peak memory that
/// stays nearly flat in the number of sites; the figures are in `Benchmarks/RESULTS.md`.
enum ConnectionBuffers {
    /// The largest read from a participant's socket.
    static let readBytes = 16 << 10
    /// How many reads one event-loop pass makes from a participant's socket.
    static let readsPerPass = 2
    /// The most bytes written to a participant that TLS encrypts at once.
    static let flushBytes = 16 << 10

    /// Installs the bounds on an accepted connection whose pipeline gRPC has configured (TLS
    /// first, HTTP/2 after it); frames longer than `maximumFrameBytes` pass unaligned, for
    /// HTTP/2 to refuse.
    static func install(on channel: any Channel, maximumFrameBytes: Int) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            let aligner = HTTP2FrameAligner(maximumFrameBytes: maximumFrameBytes, flushBytes: flushBytes)
            if let tls = try? pipeline.context(handlerType: NIOSSLServerHandler.self) {
                try pipeline.addHandler(CiphertextSlicer(), position: .before(tls.handler))
                try pipeline.addHandler(aligner, position: .after(tls.handler))
            } else {
                try pipeline.addHandler(aligner, position: .first)
            }
        }.flatMap {
            channel.setOption(
                ChannelOptions.recvAllocator,
                value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: readBytes))
        }.flatMap {
            channel.setOption(ChannelOptions.maxMessagesPerRead, value: UInt(readsPerPass))
        }
    }
}

/// Hands the next handler (TLS) its inbound bytes one TLS record at a time: after each record
/// that completes, a read-complete, so TLS decrypts at most one record before it passes the
/// plaintext on.
///
/// TLS keeps its plaintext buffer at the largest size it ever needed, and it asks for room for a
/// whole record (16 KiB) after what it already decrypted in the same pass: fed slices of a fixed
/// size, a slice that finished one record and carried a small one too doubled that buffer.
///
/// It reads only the length in each 5-byte record header and checks nothing else: TLS does. It
/// must see the connection from its first byte, as it does: gRPC runs ``ConnectionBuffers``'
/// installer in the accepted channel's initializer, before the first read.
final class CiphertextSlicer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    static let recordHeaderBytes = 5

    /// The header of the next record, as far as it has arrived.
    private var header: [UInt8] = []
    /// How much of the current record's body has not arrived yet.
    private var bodyLeft = 0
    /// A record ended with the last bytes passed on, and no read-complete has followed yet.
    private var completePending = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if completePending {
            completePending = false
            context.fireChannelReadComplete()
        }
        var sliceLength = 0
        while sliceLength < bytes.readableBytes {
            let available = bytes.readableBytes - sliceLength
            if bodyLeft == 0 {
                let taken = min(Self.recordHeaderBytes - header.count, available)
                header += bytes.getBytes(at: bytes.readerIndex + sliceLength, length: taken)!
                sliceLength += taken
                if header.count == Self.recordHeaderBytes {
                    bodyLeft = Int(header[3]) << 8 | Int(header[4])
                    header.removeAll(keepingCapacity: true)
                }
                // A record with an empty body (TLS refuses it) ends at its header.
                guard bodyLeft == 0, header.isEmpty else { continue }
            } else {
                let taken = min(bodyLeft, available)
                bodyLeft -= taken
                sliceLength += taken
                guard bodyLeft == 0 else { continue }
            }
            // A record ends here.
            let record = bytes.readSlice(length: sliceLength)!
            sliceLength = 0
            context.fireChannelRead(wrapInboundOut(record))
            if bytes.readableBytes > 0 {
                context.fireChannelReadComplete()
            } else {
                completePending = true
            }
        }
        if bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(bytes)) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        completePending = false
        context.fireChannelReadComplete()
    }
}

/// Passes on an HTTP/2 connection's inbound bytes in whole frames (the 24-byte client preface
/// first, as it comes), holding a frame that has not fully arrived; and passes what is written
/// to the connection on in pieces of at most `flushBytes`, flushing each.
///
/// It reads only the length in each 9-byte frame header and checks nothing else: HTTP/2 does.
/// A frame that declares more than `maximumFrameBytes` turns the alignment off for the rest of
/// the connection, so HTTP/2 sees the oversized frame and ends the connection with its own error.
final class HTTP2FrameAligner: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    static let prefaceBytes = 24
    static let frameHeaderBytes = 9

    private let maximumFrameBytes: Int
    private let flushBytes: Int
    private var prefaceToPass = HTTP2FrameAligner.prefaceBytes
    /// The start of a frame that has not fully arrived.
    private var partialFrame: ByteBuffer?
    private var aligning = true
    private var unflushedBytes = 0

    init(maximumFrameBytes: Int, flushBytes: Int) {
        precondition(maximumFrameBytes > 0 && flushBytes > 0)
        self.maximumFrameBytes = maximumFrameBytes
        self.flushBytes = flushBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard aligning else {
            context.fireChannelRead(data)
            return
        }
        if var partial = partialFrame.take() {
            partial.writeBuffer(&bytes)
            bytes = partial
        }
        let whole = wholeFrameBytes(in: bytes)
        if whole > 0, let frames = bytes.readSlice(length: whole) {
            context.fireChannelRead(wrapInboundOut(frames))
        }
        guard bytes.readableBytes > 0 else { return }
        if aligning {
            // A copy, so that the held bytes do not keep the (larger) buffer they came in alive.
            var held = context.channel.allocator.buffer(capacity: maximumFrameBytes + Self.frameHeaderBytes)
            held.writeBuffer(&bytes)
            partialFrame = held
        } else {
            context.fireChannelRead(wrapInboundOut(bytes))
        }
    }

    /// How many of `bytes`' readable bytes are the rest of the preface and whole frames; turns
    /// the alignment off at a frame longer than the maximum.
    private func wholeFrameBytes(in bytes: ByteBuffer) -> Int {
        var offset = min(prefaceToPass, bytes.readableBytes)
        prefaceToPass -= offset
        guard prefaceToPass == 0 else { return offset }
        while bytes.readableBytes - offset >= Self.frameHeaderBytes {
            let start = bytes.readerIndex + offset
            guard let high = bytes.getInteger(at: start, as: UInt8.self),
                let low = bytes.getInteger(at: start + 1, as: UInt16.self)
            else { break }
            let length = Int(high) << 16 | Int(low)
            guard length <= maximumFrameBytes else {
                aligning = false
                return offset
            }
            guard bytes.readableBytes - offset >= Self.frameHeaderBytes + length else { break }
            offset += Self.frameHeaderBytes + length
        }
        return offset
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .byteBuffer(var bytes) = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        // Fewer than `flushBytes` are unflushed here, so every piece cut is at least one byte.
        // Each piece that fills the bound is flushed; the write's promise goes with its last.
        while unflushedBytes + bytes.readableBytes > flushBytes,
            let piece = bytes.readSlice(length: flushBytes - unflushedBytes)
        {
            context.write(wrapOutboundOut(.byteBuffer(piece)), promise: nil)
            context.flush()
            unflushedBytes = 0
        }
        unflushedBytes += bytes.readableBytes
        context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: promise)
        if unflushedBytes == flushBytes {
            context.flush()
            unflushedBytes = 0
        }
    }

    func flush(context: ChannelHandlerContext) {
        unflushedBytes = 0
        context.flush()
    }
}
