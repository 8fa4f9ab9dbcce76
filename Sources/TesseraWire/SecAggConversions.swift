import Foundation
public import TesseraFederation
public import TesseraSecAgg

// MARK: NeighbourGraph.Kind

extension Tessera_V1_NeighbourGraph {
    public init(_ kind: NeighbourGraph.Kind) throws(WireError) {
        self.init()
        switch kind {
        case .complete:
            self.kind = .complete
        case .harary(let degree, let seed):
            self.kind = .harary
            self.degree = try checkedUInt64(degree, wireField("NeighbourGraph", "degree"))
            self.seed = Data(seed)
        }
    }
}

extension NeighbourGraph.Kind {
    public init(_ wire: Tessera_V1_NeighbourGraph) throws(WireError) {
        switch wire.kind {
        case .complete:
            self = .complete
        case .harary:
            self = .harary(
                degree: try checkedPositiveInt(wire.degree, wireField("NeighbourGraph", "degree")),
                seed: [UInt8](wire.seed))
        case .unspecified:
            throw WireError.missing(wireField("NeighbourGraph", "kind"), "the neighbour graph kind")
        case .UNRECOGNIZED(let value):
            throw WireError(
                code: .unknownEnumValue,
                message: "unknown neighbour graph kind \(value); this build knows COMPLETE (1) and HARARY (2).",
                field: wireField("NeighbourGraph", "kind"))
        }
    }
}

// MARK: SecureRoundAssignment

extension Tessera_V1_SecureRoundAssignment {
    public init(_ assignment: SecureRoundAssignment) throws(WireError) {
        self.init()
        secaggRoundID = assignment.roundID
        participantIndex = assignment.participantIndex
        rosterSize = try checkedUInt64(assignment.rosterSize, wireField("SecureRoundAssignment", "roster_size"))
        graph = try Tessera_V1_NeighbourGraph(assignment.graph)
        threshold = try checkedUInt64(assignment.threshold, wireField("SecureRoundAssignment", "threshold"))
        clip = assignment.clip
        bits = try checkedUInt64(assignment.bits, wireField("SecureRoundAssignment", "bits"))
        maxWeight = assignment.maxWeight
        activeAdversary = assignment.activeAdversary
        credentials = assignment.credentials.sorted { $0.key < $1.key }.map { index, certificate in
            var credential = Tessera_V1_RosterCredential()
            credential.participantIndex = index
            credential.certificate = Data(certificate)
            return credential
        }
        if let commitment = assignment.graphSeedCommitment { graphSeedCommitment = Data(commitment) }
        metricCount = UInt32(clamping: assignment.metricCount)
    }
}

extension SecureRoundAssignment {
    /// The largest roster a participant accepts: what ``MetricsEncoding`` sums exactly, and far
    /// beyond a cross-silo federation.
    public static let maximumRosterSize = MetricsEncoding.maximumInputs
    /// The largest signing certificate accepted in a roster (Tessera's are under 1 KiB).
    public static let maximumCredentialBytes = 16 * 1024
}

extension SecureRoundAssignment {
    /// Checks what the wire can get wrong: presence, ranges, and that the participant's index is
    /// on the roster. Whether the parameters make a sound SecAgg configuration (threshold
    /// against graph degree, bits against roster size) is `SecAggConfiguration`'s and
    /// `QuantizationCodec`'s to decide, when the participant builds them.
    public init(_ wire: Tessera_V1_SecureRoundAssignment) throws(WireError) {
        let f = { (name: String) in wireField("SecureRoundAssignment", name) }
        guard wire.hasGraph else { throw WireError.missing(f("graph"), "the neighbour graph") }
        let rosterSize = try checkedPositiveInt(wire.rosterSize, f("roster_size"))
        guard rosterSize <= Self.maximumRosterSize else {
            throw WireError.outOfRange(
                f("roster_size"), "a roster of \(rosterSize) exceeds the \(Self.maximumRosterSize) this build accepts.")
        }
        guard wire.participantIndex >= 1, Int(wire.participantIndex) <= rosterSize else {
            throw WireError.outOfRange(
                f("participant_index"),
                "participant index \(wire.participantIndex) is not on the roster 1...\(rosterSize).")
        }
        let threshold = try checkedPositiveInt(wire.threshold, f("threshold"))
        guard threshold <= rosterSize else {
            throw WireError.outOfRange(f("threshold"), "threshold \(threshold) exceeds the roster size \(rosterSize).")
        }
        let bits = try checkedPositiveInt(wire.bits, f("bits"))
        guard bits <= 32 else {
            throw WireError.outOfRange(f("bits"), "quantization to \(bits) bits does not fit a 32-bit word.")
        }
        guard wire.clip.isFinite, wire.clip > 0 else {
            throw WireError.outOfRange(f("clip"), "the clipping bound must be finite and positive, got \(wire.clip).")
        }
        guard wire.maxWeight >= 1 else {
            throw WireError.outOfRange(f("max_weight"), "must be at least 1, got 0 (unset?).")
        }
        guard wire.credentials.isEmpty || wire.credentials.count == rosterSize else {
            throw WireError.outOfRange(
                f("credentials"), "\(wire.credentials.count) signing certificates for a roster of \(rosterSize).")
        }
        var credentials: [UInt32: [UInt8]] = [:]
        for credential in wire.credentials {
            let index = credential.participantIndex
            guard index >= 1, Int(index) <= rosterSize, credentials[index] == nil else {
                throw WireError.outOfRange(
                    f("credentials"), "participant index \(index) is off the roster 1...\(rosterSize) or listed twice.")
            }
            guard !credential.certificate.isEmpty, credential.certificate.count <= Self.maximumCredentialBytes else {
                throw WireError.outOfRange(
                    f("credentials"),
                    "the certificate of participant \(index) has \(credential.certificate.count) bytes (1 to \(Self.maximumCredentialBytes) accepted)."
                )
            }
            credentials[index] = [UInt8](credential.certificate)
        }
        guard wire.graphSeedCommitment.isEmpty || wire.graphSeedCommitment.count == 32 else {
            throw WireError.outOfRange(
                f("graph_seed_commitment"), "a SHA-256 commitment has 32 bytes, got \(wire.graphSeedCommitment.count).")
        }
        guard wire.metricCount <= 64 else {
            throw WireError.outOfRange(f("metric_count"), "at most 64 metrics, got \(wire.metricCount).")
        }
        self.init(
            roundID: wire.secaggRoundID, participantIndex: wire.participantIndex, rosterSize: rosterSize,
            graph: try NeighbourGraph.Kind(wire.graph), threshold: threshold, clip: wire.clip, bits: bits,
            maxWeight: wire.maxWeight, activeAdversary: wire.activeAdversary, credentials: credentials,
            graphSeedCommitment: wire.graphSeedCommitment.isEmpty ? nil : [UInt8](wire.graphSeedCommitment),
            metricCount: Int(wire.metricCount))
    }
}

// MARK: SecAgg messages

extension Tessera_V1_SecAggPayload {
    /// A whole SecAgg message in its binary encoding. Masked inputs are not sent this way: see
    /// ``ModelChunker/maskedInputChunks(of:)``.
    public init(_ message: SecAggMessage) {
        self.init()
        body = .message(Data(message.encoded()))
    }
}

/// Decodes the SecAgg bytes of a payload, reporting a `SecAggError` as the cause.
func decodeSecAggMessage(_ bytes: Data) throws(WireError) -> SecAggMessage {
    do {
        return try SecAggMessage.decode([UInt8](bytes))
    } catch {
        throw WireError(
            code: .invalidSecAggPayload, message: "the SecAgg message does not decode: \(error.message)",
            field: wireField("SecAggPayload", "message"), cause: error)
    }
}
