/// Constants of the Tessera wire protocol shared by both ends of a session.
public enum WireProtocol {
    /// The protocol version this build speaks, sent in `Hello` and `Welcome`. Bump it when a
    /// change to the `.proto` files or to their meaning would make an older peer misread a
    /// message (a new required field, a changed unit), not for additions older peers ignore.
    public static let version: UInt32 = 1

    /// The default largest payload of one chunk (model, update or masked-input bytes): 64 KiB.
    ///
    /// A chunk is the unit every layer copies (TLS records, HTTP/2 frames, the gRPC deframer,
    /// protobuf, the reassembly buffer), so it is sized to stay in a core's L2 cache through all
    /// of those copies; and what a receiver buffers per sender is a few chunks, so it bounds the
    /// coordinator's memory per connected participant. Per-message overhead stays small (a
    /// 1M-parameter model is 62 chunks).
    public static let defaultChunkBytes = 1 << 16

    /// How much of a model a receiver asks for in one `FetchModel` call: 128 KiB (2 chunks).
    ///
    /// A model is fetched as consecutive ranges, one after the other. gRPC's server-streaming
    /// writes are not paced by the network (the handler can queue a whole model in memory
    /// before a byte has left), so this is what bounds the coordinator's memory per
    /// downloading participant. Measured on the runtime benchmark (4 MB model, 100 sites): with
    /// the whole model in one call the coordinator's peak RSS was 880 MB; in ranges, about 190.
    /// The cost is one round trip per range, which a long-distance link will feel first.
    public static let modelRangeBytes = 2 * defaultChunkBytes

    /// The default upper bound on a model or update a receiver accepts: 1 GiB (268M float32
    /// parameters). Receivers check an announced total against their bound before allocating.
    public static let defaultMaximumVectorBytes = 1 << 30
}
