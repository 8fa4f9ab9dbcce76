import Foundation
import GRPCCore
import TesseraCoordinator
import TesseraFederation
import TesseraState
import TesseraTransport

/// The researcher's commands against a running coordinator (`--coordinator HOST:PORT`), one
/// function per command: `tessera submit` and `tessera experiments list|show|cancel|logs`.
/// Each connects with the certificate in `identity` (`tessera pki issue --researcher NAME`),
/// makes one request and prints the answer.
enum RemoteCommands {
    /// `tessera submit FILE --coordinator HOST:PORT --identity DIR`.
    static func submit(file: String, coordinator: String, identity: String, follow: Bool = false) async throws {
        let url = URL(fileURLWithPath: file)
        let yaml: String
        do {
            yaml = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw CommandError("cannot read the experiment file \(url.path): \(error.localizedDescription)")
        }
        // The path as `tessera validate` names it, so a refusal reads the same.
        let record = try await call(coordinator, identity) { try await $0.submit(yaml: yaml, source: url.path) }
        print(
            "queued experiment \(record.id) (\(record.name)) as \(record.submittedBy): \(record.roundsPlanned) rounds of \(record.architecture), model versions \(record.versionMajor).\(record.versionMinor).x"
        )
        guard follow else {
            print(
                "follow it: tessera experiments logs \(record.id) --coordinator \(coordinator) --identity \(identity)")
            return
        }
        try await self.follow(id: record.id, rounds: record.roundsPlanned, coordinator: coordinator, identity: identity)
    }

    /// Shows experiment `id`'s progress until it finishes: one live line per round on a terminal
    /// (``LiveProgress``), its log lines otherwise. It asks the coordinator every `interval`; a
    /// failed or cancelled experiment ends the command with an error.
    static func follow(
        id: Int64, rounds: Int, coordinator: String, identity: String, interval: Duration = .seconds(2)
    ) async throws {
        let live = isatty(STDOUT_FILENO) == 1 ? LiveProgress(totalRounds: rounds) : nil
        let follower = ExperimentFollower(interval: interval) {
            try await call(coordinator, identity) { client in
                (try await client.experiment(id), try await client.logs(of: id, limit: 500))
            }
        }
        let record = try await follower.run { at, line in
            if let live {
                live.show(line, permanent: true)
            } else {
                print("\(ExperimentListing.timestamp(at))  \(line)")
            }
        }
        live?.end()
        let outcome =
            "experiment \(record.id) (\(record.name)) \(record.status)\(record.message.map { ": \($0)" } ?? "")"
        guard record.status == .completed else { throw CommandError(outcome) }
        print(outcome)
    }

    /// `tessera experiments list`.
    static func list(
        status: ExperimentStatus?, mine: Bool, limit: Int?, coordinator: String, identity: String
    ) async throws {
        let (records, total) = try await call(coordinator, identity) {
            try await $0.experiments(status: status, mine: mine, limit: limit)
        }
        print(ExperimentListing.table(records))
        if total > records.count { print("(the latest \(records.count) of \(total); --limit shows more)") }
    }

    /// `tessera experiments show ID`.
    static func show(id: Int64, coordinator: String, identity: String) async throws {
        let record = try await call(coordinator, identity) { try await $0.experiment(id) }
        print(ExperimentListing.details(record))
    }

    /// `tessera experiments cancel ID`.
    static func cancel(id: Int64, coordinator: String, identity: String) async throws {
        let record = try await call(coordinator, identity) { try await $0.cancel(id) }
        print("experiment \(record.id) (\(record.name)) is \(record.status)\(record.message.map { ": \($0)" } ?? "")")
    }

    /// `tessera experiments logs ID`.
    static func logs(id: Int64, limit: Int?, coordinator: String, identity: String) async throws {
        let lines = try await call(coordinator, identity) { try await $0.logs(of: id, limit: limit) }
        for entry in lines { print("\(ExperimentListing.timestamp(entry.at))  \(entry.line)") }
    }

    /// `tessera models list --coordinator`: the versions matching `query`, newest first.
    static func models(_ query: ModelQuery, coordinator: String, identity: String) async throws -> [RegisteredModel] {
        try await call(coordinator, identity) { try await $0.models(matching: query) }
    }

    /// `tessera models show REF --coordinator`: the version and its stage history.
    static func model(
        _ reference: ModelReference, coordinator: String, identity: String
    ) async throws -> (model: RegisteredModel, transitions: [StageTransition]) {
        try await call(coordinator, identity) { try await $0.model(reference) }
    }

    /// Connects, runs one request, and turns the coordinator's refusal into its message alone
    /// (a validation error then prints exactly as `tessera validate` prints it).
    private static func call<Result: Sendable>(
        _ coordinator: String, _ identity: String,
        _ body: @escaping @Sendable (RemoteExperimentsClient) async throws -> Result
    ) async throws -> Result {
        let endpoint: Endpoint
        do {
            endpoint = try Endpoint(parsing: coordinator)
        } catch {
            throw CommandError("--coordinator \(coordinator): \(error.message)")
        }
        do {
            return try await RemoteExperimentsClient.withConnection(
                to: endpoint, identityDirectory: URL(fileURLWithPath: identity), body)
        } catch let error as RPCError {
            switch error.code {
            case .unavailable:
                throw CommandError(
                    "cannot reach the coordinator at \(endpoint) (is it running, and does its certificate name \(endpoint.host)?): \(error.message)"
                )
            default:
                throw CommandError(error.message)
            }
        } catch let error as TesseraRuntimeError {
            throw CommandError(error.message)
        }
    }
}

/// How experiments print, whether they come from a running coordinator or a state folder.
enum ExperimentListing {
    static func table(_ records: [ExperimentRecord]) -> String {
        guard !records.isEmpty else { return "no experiments" }
        var rows = [["ID", "STATUS", "NAME", "VERSIONS", "ROUNDS", "SUBMITTED BY", "SUBMITTED (UTC)"]]
        for record in records {
            rows.append([
                String(record.id), record.status.rawValue, record.name,
                "\(record.versionMajor).\(record.versionMinor).x", String(record.roundsPlanned), record.submittedBy,
                timestamp(record.submittedAt),
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    static func details(_ record: ExperimentRecord) -> String {
        var lines = [
            "experiment \(record.id): \(record.name)",
            "  status:        \(record.status)\(record.message.map { " (\($0))" } ?? "")",
            "  submitted by:  \(record.submittedBy) at \(timestamp(record.submittedAt))",
        ]
        if let started = record.startedAt { lines.append("  started:       \(timestamp(started))") }
        if let finished = record.finishedAt { lines.append("  finished:      \(timestamp(finished))") }
        lines += [
            "  model:         \(record.architecture), versions \(record.versionMajor).\(record.versionMinor).x",
            "  rounds:        \(record.roundsPlanned)",
            "  config hash:   \(record.configHash)",
        ]
        if !record.configYAML.isEmpty {
            lines.append("  configuration:")
            lines += record.configYAML.split(separator: "\n", omittingEmptySubsequences: false).map { "    \($0)" }
        }
        return lines.joined(separator: "\n")
    }

    static func timestamp(_ date: Date) -> String {
        date.ISO8601Format()
    }
}
