import TesseraWire

/// HTTP/2 settings of both ends (grpc-swift's defaults are 16 KiB frames, a 64 KiB window at
/// the server and an 8 MiB one at the client).
///
/// The coordinator's settings bound what it buffers per connected participant, which keeps its
/// memory flat in the number of participants; the participant's favour throughput, since it has
/// one connection. Lifting the bounds makes rounds faster but the coordinator's memory grow with
/// every connection, so the defaults stay memory-bound (see `Benchmarks/RESULTS.md`, runtime).
public enum HTTP2Tuning {
    /// The largest frame participants may send: grpc-swift's default, 16 KiB. The coordinator's
    /// frame decoder keeps one frame per connection, so this is chosen for memory over speed.
    public static let coordinatorMaximumFrameBytes = 1 << 14
    /// The coordinator's flow-control window per stream: two chunk messages (128 KiB). It bounds
    /// what the coordinator buffers for a participant it is not reading from (an upload waiting
    /// for a slot) to two chunks, while one chunk would make every upload wait for a window
    /// update after each chunk.
    public static let coordinatorWindowBytes = 2 << 16
    /// The largest frame the coordinator may send a participant: a whole chunk and its envelope.
    public static let participantMaximumFrameBytes = 2 * WireProtocol.defaultChunkBytes
    /// The participant's HTTP/2 window: the largest model window the store grants.
    public static let participantWindowBytes = WireProtocol.maximumModelWindowBytes
}
