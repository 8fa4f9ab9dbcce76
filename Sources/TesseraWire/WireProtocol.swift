/// Constants of the Tessera wire protocol shared by both ends of a session.
public enum WireProtocol {
    /// The protocol version this build speaks, sent in `Hello` and `Welcome`. Bump it when a
    /// change to the `.proto` files or to their meaning would make an older peer misread a
    /// message (a new required field, a changed unit), not for additions older peers ignore.
    public static let version: UInt32 = 1

    /// The default largest payload of one chunk (model, update or masked-input bytes): 63 KiB.
    ///
    /// A chunk is the unit every layer copies (TLS records, HTTP/2 frames, the gRPC deframer,
    /// protobuf, the reassembly buffer), so it is sized to stay in a core's L2 cache through all
    /// of those copies; and what a receiver buffers per sender is a few chunks, so it bounds the
    /// coordinator's memory per connected participant. Per-message overhead stays small (a
    /// 1M-parameter model is 63 chunks).
    ///
    /// 1 KiB short of 64 KiB on purpose: SwiftNIO rounds every buffer it allocates up to a power
    /// of two, so a chunk message must leave room for its envelope (header, offsets; about 100
    /// bytes plus the experiment id) inside 64 KiB. A 64 KiB payload made every serialized
    /// chunk, gRPC frame and reassembly buffer a 128 KiB allocation.
    public static let defaultChunkBytes = (1 << 16) - (1 << 10)

    /// How many bytes of a model a receiver asks to have in flight while fetching it: 16 chunks
    /// (about 1 MiB), enough to keep a long link busy if the store grants it. The receiver
    /// credits bytes back as it takes chunks in (`FetchModel` is flow-controlled by the
    /// application), because gRPC's server-streaming writes are not paced by the network: the
    /// handler could queue a whole model in memory before a byte had left (Benchmarks/RESULTS.md
    /// has the coordinator's memory without this pacing).
    public static let modelWindowBytes = 16 * defaultChunkBytes

    /// The largest window a model store grants, whatever a receiver asks for: 16 chunks. A
    /// store may grant less (it says how much in the first chunk).
    public static let maximumModelWindowBytes = 16 * defaultChunkBytes

    /// The default upper bound on a model or update a receiver accepts: 1 GiB (268M float32
    /// parameters). Receivers check an announced total against their bound before allocating.
    public static let defaultMaximumVectorBytes = 1 << 30

    /// The largest sample count a peer may report for one dataset: 2⁴⁰, far above any site's
    /// data, and small enough that the sum over 65,535 sites cannot overflow an `Int`.
    public static let maximumSampleCount = 1 << 40
    /// The most datasets one Hello may offer.
    public static let maximumDatasetOffers = 256
    /// The longest dataset name, software version or other short name a peer may send, in
    /// UTF-8 bytes.
    public static let maximumNameBytes = 256
    /// The largest feature count a dataset offer may report.
    public static let maximumFeatureCount = 1 << 24
    /// The largest machine memory a Hello may report, in bytes (1 PiB).
    public static let maximumMemoryBytes = 1 << 50
    /// The longest failure or rejection reason a peer may send, in UTF-8 bytes.
    public static let maximumReasonBytes = 4096
}
