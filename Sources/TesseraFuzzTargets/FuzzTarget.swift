/// The fuzz targets: each takes arbitrary bytes into one of the places where Tessera reads
/// what a peer, a site operator or a file gives it.
///
/// A target must return normally on every input: invalid input is refused with an error,
/// which the target swallows. Anything else (a trap, an overflow, an out-of-bounds access, a
/// broken invariant checked with ``fuzzExpect(_:_:)``) is a bug in the module that read the
/// bytes. `Fuzz/` runs these under libFuzzer; `TesseraFuzzTargetsTests` replays their seed
/// corpora and every crash reproducer in `Fuzz/Regressions/` on every `make test`.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// The coordinator's reader of a participant's session stream, fed a sequence of envelopes.
    case participantEnvelopes = "participant_envelopes"
    /// The participant's reader of the coordinator's session stream, fed a sequence of
    /// envelopes, then its site-policy screening of the tasks.
    case coordinatorEnvelopes = "coordinator_envelopes"
    /// The binary SecAgg message decoder.
    case secAggMessage = "secagg_message"
    /// Shamir share decoding and reconstruction.
    case shamirShare = "shamir_share"
    /// A model architecture from the wire, its size and the site policy's check of it.
    case modelArchitecture = "model_architecture"
    /// A train task (and an evaluate task) from the wire, with its secure-round assignment.
    case trainTask = "train_task"
    /// The experiment YAML loader.
    case experimentYAML = "experiment_yaml"
    /// The site YAML loader.
    case siteYAML = "site_yaml"
    /// The signed revocation list that sites receive through the coordinator.
    case revocationList = "revocation_list"
    /// Safetensors model files.
    case safetensors
    /// The CSV dataset loader.
    case csv
    /// The NPY array loader.
    case npy
    /// The IDX (MNIST) loader.
    case idx

    /// Runs the target on one input and returns how many of the messages or files in it were
    /// accepted: a seed corpus whose seeds are all refused only tests the first checks.
    @discardableResult
    public func run(_ bytes: [UInt8]) -> Int {
        switch self {
        case .participantEnvelopes: EnvelopeTargets.participantEnvelopes(bytes)
        case .coordinatorEnvelopes: EnvelopeTargets.coordinatorEnvelopes(bytes)
        case .secAggMessage: SecAggTargets.secAggMessage(bytes)
        case .shamirShare: SecAggTargets.shamirShares(bytes)
        case .modelArchitecture: TaskTargets.modelArchitecture(bytes)
        case .trainTask: TaskTargets.trainTask(bytes)
        case .experimentYAML: ConfigTargets.experimentYAML(bytes)
        case .siteYAML: ConfigTargets.siteYAML(bytes)
        case .revocationList: RevocationTarget.revocationList(bytes)
        case .safetensors: FileTargets.safetensors(bytes)
        case .csv: FileTargets.csv(bytes)
        case .npy: FileTargets.npy(bytes)
        case .idx: FileTargets.idx(bytes)
        }
    }
}

/// Traps with `message` when an invariant the fuzzed code promises does not hold. Unlike
/// `assert`, it is checked in release builds, where the fuzzer runs.
@inline(__always)
func fuzzExpect(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("fuzz invariant broken: \(message())") }
}

/// Reads a fuzzer's input as a few control values followed by length-prefixed pieces, so one
/// input can describe a sequence of messages. Reading past the end yields zeros and empty
/// pieces: every byte string is a valid input.
public struct FuzzInput: Sendable {
    private let bytes: [UInt8]
    private var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { offset >= bytes.count }

    public mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A piece of at most 65,535 bytes: a 2-byte little-endian length, then that many bytes
    /// (fewer at the end of the input).
    public mutating func piece() -> [UInt8] {
        let length = Int(byte()) | Int(byte()) << 8
        let end = min(bytes.count, offset + length)
        defer { offset = end }
        return Array(bytes[min(offset, end)..<end])
    }

    /// Everything not read yet.
    public mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(bytes[min(offset, bytes.count)...])
    }

    /// The encoding ``piece()`` reads: a 2-byte little-endian length, then `piece`.
    public static func framed(_ piece: [UInt8]) -> [UInt8] {
        precondition(piece.count <= 0xFFFF, "a fuzz input piece holds at most 65,535 bytes")
        return [UInt8(piece.count & 0xFF), UInt8(piece.count >> 8)] + piece
    }
}
