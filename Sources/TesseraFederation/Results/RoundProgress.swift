import Foundation

/// Follows an experiment's progress lines (the coordinator's round lines, as `tessera simulate`
/// prints them and as the coordinator keeps them in its experiment log) and says where the
/// current round is: for one live line on a terminal.
///
/// It reads the lines the round state machine writes — `round N: selected C of …`, `round N:
/// <stage> with K participants`, `round N: dropped …`, `round N: … disconnected during …`, and
/// the round's summary (``RoundRecord/summaryLine``) — so the tests pin those formats.
public struct RoundProgress: Sendable {
    public let totalRounds: Int
    public private(set) var round: Int?
    public private(set) var stage: String?
    public private(set) var cohort: Int?
    public private(set) var dropouts = 0
    public private(set) var finishedRounds = 0
    private var roundStartedAt: Double?
    private var firstRoundStartedAt: Double?

    public init(totalRounds: Int) {
        self.totalRounds = totalRounds
    }

    /// Takes one line seen at `now` (seconds on any clock); returns whether it ends a round (the
    /// caller then prints it as a line of its own).
    @discardableResult
    public mutating func observe(_ line: String, at now: Double) -> Bool {
        guard let (number, rest) = Self.split(line) else { return false }
        if number != round {
            round = number
            stage = nil
            cohort = nil
            dropouts = 0
            roundStartedAt = now
            if firstRoundStartedAt == nil { firstRoundStartedAt = now }
        }
        if rest.hasPrefix("completed,") || rest.hasPrefix("failed,") {
            finishedRounds += 1
            return true
        }
        if rest.hasPrefix("selected "), let count = Int(rest.dropFirst("selected ".count).prefix { $0.isNumber }) {
            cohort = count
            stage = "training"
        } else if rest.hasPrefix("dropped ") || rest.contains(" disconnected during ") {
            dropouts += 1
        } else if let range = rest.range(of: " with "), rest.hasSuffix(" participants") {
            stage = String(rest[..<range.lowerBound])
        } else if rest.hasPrefix("aggregated ") {
            stage = "aggregation"
        }
        return false
    }

    /// `round 7/20 · masked_input · cohort 10 · dropouts 1 · 3.2 s · ETA 41 s` (what is known).
    public func liveLine(at now: Double) -> String {
        guard let round else { return "waiting for the first round" }
        var parts = ["round \(round)/\(totalRounds)"]
        if let stage { parts.append(stage) }
        if let cohort { parts.append("cohort \(cohort)") }
        parts.append("dropouts \(dropouts)")
        if let roundStartedAt { parts.append(Self.seconds(now - roundStartedAt)) }
        if let eta = eta(at: now) { parts.append("ETA \(Self.seconds(eta))") }
        return parts.joined(separator: " · ")
    }

    /// The rounds left times the mean round so far; `nil` before the first round has finished.
    public func eta(at now: Double) -> Double? {
        guard finishedRounds > 0, let firstRoundStartedAt, let roundStartedAt else { return nil }
        let perRound = (roundStartedAt - firstRoundStartedAt) / Double(finishedRounds)
        let remaining = Double(max(0, totalRounds - finishedRounds))
        return max(0, perRound * remaining - (now - roundStartedAt))
    }

    /// `round N: …` as (N, …).
    static func split(_ line: String) -> (Int, Substring)? {
        guard line.hasPrefix("round ") else { return nil }
        let afterWord = line.dropFirst("round ".count)
        let digits = afterWord.prefix { $0.isNumber }
        guard let number = Int(digits) else { return nil }
        var rest = afterWord.dropFirst(digits.count)
        if rest.hasPrefix(": ") { rest = rest.dropFirst(2) }
        return (number, rest)
    }

    static func seconds(_ value: Double) -> String {
        value < 60 ? String(format: "%.1f s", value) : String(format: "%d min %02d s", Int(value) / 60, Int(value) % 60)
    }
}
