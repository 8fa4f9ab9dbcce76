public import Foundation
public import TesseraState

/// Follows one experiment on a coordinator until it finishes (`tessera submit --follow`): asks
/// for its record and its latest log lines every `interval`, hands each line to `show` once and
/// in order, and returns the finished record. The queries and the wait are injected, so tests
/// drive it without a coordinator or a clock.
public struct ExperimentFollower {
    public typealias Snapshot = (record: ExperimentRecord, lines: [(at: Date, line: String)])

    /// How many lines it remembers to recognise the ones it showed (the coordinator answers with
    /// the latest 500).
    static let remembered = 2_000

    public var interval: Duration
    private let fetch: () async throws -> Snapshot
    private let wait: (Duration) async throws -> Void

    public init(
        interval: Duration = .seconds(2), fetch: @escaping () async throws -> Snapshot,
        wait: @escaping (Duration) async throws -> Void = { try await Task.sleep(for: $0) }
    ) {
        self.interval = interval
        self.fetch = fetch
        self.wait = wait
    }

    /// Shows every new line until the experiment is completed, failed or cancelled; returns its
    /// last record.
    public func run(show: (Date, String) -> Void) async throws -> ExperimentRecord {
        var seen = Set<String>()
        var order: [String] = []
        while true {
            let (record, lines) = try await fetch()
            for entry in lines {
                let key = "\(entry.at.timeIntervalSince1970) \(entry.line)"
                guard seen.insert(key).inserted else { continue }
                order.append(key)
                if order.count > Self.remembered { seen.remove(order.removeFirst()) }
                show(entry.at, entry.line)
            }
            if record.status.isFinished { return record }
            try await wait(interval)
        }
    }
}
