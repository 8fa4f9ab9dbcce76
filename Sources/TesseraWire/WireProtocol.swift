/// Constants of the Tessera wire protocol shared by both ends of a session.
public enum WireProtocol {
    /// The protocol version this build speaks, sent in `Hello` and `Welcome`. Bump it when a
    /// change to the `.proto` files or to their meaning would make an older peer misread a
    /// message (a new required field, a changed unit), not for additions older peers ignore.
    public static let version: UInt32 = 1

    /// The default largest payload of one chunk (model, update or masked-input bytes): 1 MiB.
    ///
    /// Well under gRPC's default 4 MiB message limit once the envelope is added, small enough
    /// that a heartbeat is never stuck behind more than a few milliseconds of transfer, and
    /// large enough that per-message overhead is negligible (a 1M-parameter model is 4 chunks).
    public static let defaultChunkBytes = 1 << 20

    /// The default upper bound on a model or update a receiver accepts: 1 GiB (268M float32
    /// parameters). Receivers check an announced total against their bound before allocating.
    public static let defaultMaximumVectorBytes = 1 << 30
}
