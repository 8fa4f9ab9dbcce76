public import TesseraFederation
public import TesseraSecAgg

/// The header of every session envelope, as a Swift value.
///
/// It exists so that a late or replayed message is refused before its body is looked at: the
/// receiver compares ``experimentID``, ``round`` and ``stage`` with the round it is running
/// (``check(against:)``) and ``sequence`` with the last one it accepted (``SequenceTracker``).
/// Session-level messages (Hello, Welcome, Heartbeat) carry an empty experiment, round 0 and
/// no stage.
public struct EnvelopeHeader: Sendable, Hashable, CustomStringConvertible {
    public var experimentID: String
    public var round: Int
    public var stage: RoundStage?
    public var sequence: UInt64

    public init(experimentID: String = "", round: Int = 0, stage: RoundStage? = nil, sequence: UInt64) {
        self.experimentID = experimentID
        self.round = round
        self.stage = stage
        self.sequence = sequence
    }

    /// A session-level header: no experiment, no round, no stage.
    public static func session(sequence: UInt64) -> EnvelopeHeader { EnvelopeHeader(sequence: sequence) }

    public var description: String {
        "experiment \(experimentID.isEmpty ? "-" : experimentID), round \(round), stage \(stage?.rawValue ?? "-"), #\(sequence)"
    }

    /// Refuses a header that does not belong to the round `expected` describes.
    public func check(against expected: RoundPosition) throws(WireError) {
        let field = wireField("MessageHeader", "")
        guard experimentID == expected.experimentID else {
            throw WireError(
                code: .staleMessage,
                message:
                    "message for experiment \"\(experimentID)\" arrived during experiment \"\(expected.experimentID)\".",
                field: field + "experiment_id")
        }
        guard round == expected.round else {
            throw WireError(
                code: .staleMessage,
                message: "message for round \(round) of \(experimentID) arrived during round \(expected.round).",
                field: field + "round")
        }
        guard stage == expected.stage else {
            throw WireError(
                code: .staleMessage,
                message:
                    "message for stage \(stage?.rawValue ?? "(none)") of round \(round) arrived during stage \(expected.stage.rawValue).",
                field: field + "stage")
        }
    }
}

/// Where a round is: what a round-bound header must say to be accepted.
public struct RoundPosition: Sendable, Hashable {
    public var experimentID: String
    public var round: Int
    public var stage: RoundStage

    public init(experimentID: String, round: Int, stage: RoundStage) {
        self.experimentID = experimentID
        self.round = round
        self.stage = stage
    }
}

/// Hands out the sequence numbers of one stream direction: 1, 2, 3, …
public struct SequenceCounter: Sendable {
    public private(set) var last: UInt64 = 0

    public init() {}

    public mutating func next() -> UInt64 {
        last += 1
        return last
    }
}

/// Remembers the last sequence number accepted on one stream and refuses any that is not
/// larger: a replayed envelope, or one delivered out of order by a broken peer.
///
/// Gaps are allowed: a sender may skip numbers (for example for envelopes it built and then
/// discarded), and requiring every number would turn one lost bookkeeping step into a dead
/// session.
public struct SequenceTracker: Sendable {
    public private(set) var last: UInt64 = 0

    public init() {}

    public mutating func accept(_ sequence: UInt64) throws(WireError) {
        guard sequence > last else {
            throw WireError(
                code: .replayedMessage,
                message: "sequence number \(sequence) is not after the last accepted \(last) on this stream.",
                field: wireField("MessageHeader", "sequence"))
        }
        last = sequence
    }
}

extension RoundStage {
    /// The round stage a SecAgg protocol stage runs in. AdvertiseKeys has no round stage of its
    /// own: a participant sends its keys right after training, as its training submission.
    public init(_ stage: SecAggStage) {
        switch stage {
        case .advertiseKeys: self = .training
        case .shareKeys: self = .shareKeys
        case .maskedInputCollection: self = .maskedInput
        case .consistencyCheck: self = .consistencyCheck
        case .unmasking: self = .unmasking
        }
    }
}

// MARK: - Protobuf conversion

extension Tessera_V1_MessageHeader {
    public init(_ header: EnvelopeHeader) throws(WireError) {
        self.init()
        experimentID = header.experimentID
        round = try checkedUInt64(header.round, wireField("MessageHeader", "round"))
        stage = header.stage?.rawValue ?? ""
        sequence = header.sequence
    }
}

extension EnvelopeHeader {
    public init(_ wire: Tessera_V1_MessageHeader) throws(WireError) {
        let stage: RoundStage?
        if wire.stage.isEmpty {
            stage = nil
        } else if let known = RoundStage(rawValue: wire.stage) {
            stage = known
        } else {
            let names = RoundStage.allCases.map(\.rawValue).joined(separator: ", ")
            throw WireError(
                code: .unknownEnumValue, message: "unknown round stage \"\(wire.stage)\"; this build knows \(names).",
                field: wireField("MessageHeader", "stage"))
        }
        guard wire.sequence > 0 else {
            throw WireError.outOfRange(
                wireField("MessageHeader", "sequence"), "sequence numbers start at 1, got 0 (unset?).")
        }
        self.init(
            experimentID: wire.experimentID, round: try checkedInt(wire.round, wireField("MessageHeader", "round")),
            stage: stage, sequence: wire.sequence)
    }
}
