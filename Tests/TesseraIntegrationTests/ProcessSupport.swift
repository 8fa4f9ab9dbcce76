import Foundation
import Synchronization
import TesseraPKI
import TesseraTensor
import Testing

/// What the tests of the real `tessera-coordinator` and `tessera-participant` binaries share:
/// finding the built products, a site's CSV, and child processes whose standard error is their
/// log. Every wait has a timeout, so a hang fails the test instead of blocking the run.
enum ProcessSupport {
    /// The built products sit next to the test bundle (or the test executable).
    static var productDirectories: [URL] {
        var directories = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent()]
        if let executable = Bundle.main.executableURL {
            directories.insert(executable.deletingLastPathComponent(), at: 0)
        }
        return directories
    }

    static func binary(_ name: String) -> URL? {
        for directory in productDirectories {
            let url = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    /// A fresh directory under the temporary directory (the caller removes it).
    static func temporaryRoot(_ prefix: String) throws -> URL {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        return root
    }

    /// Under `root`: a fresh federation CA (`ca/`) and its trust folder (`trust/`, what the
    /// coordinator is given), the coordinator's identity
    /// (`coordinator/`), each site's identity and a 150-row CSV (`SITE/`, `SITE.csv`, with data
    /// seeds `csvSeed`, `csvSeed + 1`, …), and a secure-aggregation experiment over those CSVs
    /// (`experiment.yaml`, returned).
    static func prepareFederation(
        at root: URL, name: String, seed: Int, rounds: Int, sites: [String], minimum: Int, evaluateEvery: Int,
        csvSeed: UInt64
    ) throws -> URL {
        let ca = try FederationCA.initialize(at: root.appendingPathComponent("ca"))
        try ca.publishTrust(to: root.appendingPathComponent(TrustFolder.defaultName))
        _ = try ca.issueCoordinator(to: root.appendingPathComponent("coordinator"))
        for (index, site) in sites.enumerated() {
            _ = try ca.issue(site: site, to: root.appendingPathComponent(site))
            try writeSiteCSV(to: root.appendingPathComponent("\(site).csv"), rows: 150, seed: csvSeed + UInt64(index))
        }
        let experiment = root.appendingPathComponent("experiment.yaml")
        try """
        name: \(name)
        seed: \(seed)
        rounds: \(rounds)
        participants: \(sites.count)
        model: {preset: logistic_regression, inputs: 4, classes: 2}
        dataset: {kind: csv, paths: [\(sites.map { "\($0).csv" }.joined(separator: ", "))], label_column: label}
        partitioning: {scheme: natural}
        cohort: {fraction: 1.0, minimum: \(minimum)}
        strategy: {name: fedavg}
        local_training: {epochs: 2, batch_size: 10, optimizer: sgd, learning_rate: 0.2}
        secure_aggregation: {enabled: true}
        evaluation: {every: \(evaluateEvery)}
        """.write(to: experiment, atomically: true, encoding: .utf8)
        return experiment
    }

    /// A CSV whose label is whether x1 + x2 > 0 (learnable by logistic regression).
    static func writeSiteCSV(to url: URL, rows: Int, seed: UInt64) throws {
        var generator = TesseraRandom(seed: seed)
        var text = "x1,x2,x3,x4,label\n"
        for _ in 0..<rows {
            let x = (0..<4).map { _ in Double.random(in: -1...1, using: &generator) }
            text += x.map { String(format: "%.4f", $0) }.joined(separator: ",") + ",\(x[0] + x[1] > 0 ? 1 : 0)\n"
        }
        try text.write(to: url, atomically: true, encoding: .utf8)
    }

    /// A site file for `site` (identity directory and CSV named after it, under the same root).
    static func writeSiteFile(to url: URL, site: String, coordinatorPort: Int, experiment: String) throws {
        try """
        coordinator: 127.0.0.1:\(coordinatorPort)
        identity: \(site)
        datasets:
          \(experiment):
            path: \(site).csv
            label_column: label
        """.write(to: url, atomically: true, encoding: .utf8)
    }

    /// Starts `tessera-coordinator` on 127.0.0.1 port 0 and reads the port it reports on
    /// standard output ("listening on port N"). `port` is `nil` if it exited or stayed silent
    /// for `timeout` (it is then stopped); the log says why.
    /// - Parameter state: the state folder; `nil` uses one next to `results` (`results-state`),
    ///   so a coordinator started again on the same results resumes from the same state.
    static func startCoordinator(
        binary: URL, experiment: URL, tlsDirectory: URL, trustDirectory: URL, results: URL, log: URL,
        state: URL? = nil, listen: String = "127.0.0.1:0", timeout: TimeInterval = 30
    ) throws -> (process: LoggedProcess, port: Int?) {
        let state =
            state
            ?? results.deletingLastPathComponent().appendingPathComponent(
                results.lastPathComponent + "-state")
        let output = Pipe()
        let coordinator = try LoggedProcess(
            name: "coordinator", executable: binary,
            arguments: [
                "--experiment", experiment.path, "--listen", listen, "--tls-dir", tlsDirectory.path,
                "--trust", trustDirectory.path, "--results", results.path, "--state", state.path,
            ],
            log: log, standardOutput: output)
        // Reading standard output blocks: a coordinator that neither reports nor exits is stopped
        // (its output then ends) instead of blocking the test.
        let reported = Flag()
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [process = coordinator.process] in
            if !reported.isSet, process.isRunning { process.terminate() }
        }
        let port = readPort(from: output, after: "listening on port ")
        reported.set()
        return (coordinator, port)
    }

    /// The port of the first line of `output` that starts with `prefix`; `nil` if the output ends
    /// first. Blocks until then.
    static func readPort(from output: Pipe, after prefix: String) -> Int? {
        var buffer = ""
        while true {
            if let line = buffer.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) {
                return Int(line.dropFirst(prefix.count))
            }
            let data = output.fileHandleForReading.availableData
            guard !data.isEmpty else { return nil }
            buffer += String(decoding: data, as: UTF8.self)
        }
    }
}

/// A child process whose standard error goes to a log file.
///
/// Waiting is event-driven: the log is fed through a pipe whose reader wakes the waiters of a
/// line, and the process's exit wakes the waiters of its end. The time limits are only a safety
/// net for a child that hangs; they order nothing.
final class LoggedProcess: @unchecked Sendable {
    let name: String
    let process = Process()
    let log: URL
    private let events = ProcessEvents()

    /// - Parameters:
    ///   - environment: variables set on top of this process's environment; a `nil` value
    ///     removes an inherited one.
    ///   - onExit: runs on a background thread as soon as the process has exited.
    ///   - capturesOutput: collect standard output in ``output`` (read as it comes, like the log,
    ///     never by a blocking read to end-of-file: see ``ProcessEvents/processEnded()``).
    init(
        name: String, executable: URL, arguments: [String], log: URL, environment: [String: String?] = [:],
        standardOutput: Pipe? = nil, capturesOutput: Bool = false, onExit: (@Sendable (Process) -> Void)? = nil
    ) throws {
        self.name = name
        self.log = log
        process.executableURL = executable
        process.arguments = arguments
        var inherited = ProcessInfo.processInfo.environment
        for (key, value) in environment { inherited[key] = value }
        process.environment = inherited
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let file = try FileHandle(forWritingTo: log)
        let events = events
        process.standardError = Self.readingPipe(
            { data in
                file.write(data)
                events.appendLog(String(decoding: data, as: UTF8.self))
            }, closed: events.logClosed)
        process.standardOutput = standardOutput ?? FileHandle.nullDevice
        if capturesOutput {
            events.expectOutput()
            process.standardOutput = Self.readingPipe(
                { events.appendOutput(String(decoding: $0, as: UTF8.self)) }, closed: events.outputClosed)
        }
        process.terminationHandler = { process in
            onExit?(process)
            events.processEnded()
        }
        try process.run()
    }

    /// A pipe whose reader hands each chunk to `received` as it comes and calls `closed` at its end.
    private static func readingPipe(
        _ received: @escaping @Sendable (Data) -> Void, closed: @escaping @Sendable () -> Void
    ) -> Pipe {
        let pipe = Pipe()
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                closed()
                return
            }
            received(data)
        }
        return pipe
    }

    var isRunning: Bool { process.isRunning }
    var pid: Int32 { process.processIdentifier }

    /// The log so far.
    var text: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Standard output so far (with `capturesOutput`); whole once ``waitForExit(within:)`` is true.
    var output: String { events.output }

    /// Whether the log shows `line` within `timeout` seconds.
    func waitForLog(_ line: String, within timeout: TimeInterval) async -> Bool {
        await events.wait(within: timeout) { log, _ in log.contains(line) }
    }

    /// Whether `condition` (of the log so far and whether the process has exited) holds within
    /// `timeout` seconds.
    func waitFor(within timeout: TimeInterval, _ condition: @escaping @Sendable (String, Bool) -> Bool) async -> Bool {
        await events.wait(within: timeout, condition)
    }

    /// Whether the process exits within `timeout` seconds.
    func waitForExit(within timeout: TimeInterval) async -> Bool {
        await events.wait(within: timeout) { _, exited in exited }
    }

    /// Kills the process at once (SIGKILL): no handler runs, nothing is flushed.
    func killNow() { kill(process.processIdentifier, SIGKILL) }

    /// Freezes the process (SIGSTOP): its connections stay open, it sends nothing.
    func pause() { kill(process.processIdentifier, SIGSTOP) }

    /// Lets a paused process go on (SIGCONT).
    func resume() { kill(process.processIdentifier, SIGCONT) }

    /// Ends the process if it still runs (a paused one is resumed first, so SIGTERM is handled).
    func stop() {
        guard process.isRunning else { return }
        resume()
        process.terminate()
    }
}

/// A flag set once from any thread.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

/// What a child process has logged and whether it has exited, with waiters woken as either
/// changes (or, failing that, when their time limit passes).
final class ProcessEvents: Sendable {
    private struct Waiter {
        let id: Int
        let condition: @Sendable (String, Bool) -> Bool
        let continuation: CheckedContinuation<Bool, Never>
    }
    private struct State {
        var log = ""
        var output = ""
        var processEnded = false
        var logClosed = false
        var outputClosed = true
        /// Exited, and everything it wrote is in the log (and the output).
        var exited: Bool { processEnded && logClosed && outputClosed }
        var lastID = 0
        var waiters: [Waiter] = []
    }
    private let state = Mutex(State())

    func appendLog(_ text: String) { update { $0.log += text } }
    func appendOutput(_ text: String) { update { $0.output += text } }
    func expectOutput() { update { $0.outputClosed = false } }
    func outputClosed() { update { $0.outputClosed = true } }
    var output: String { state.withLock { $0.output } }
    /// The child has exited. Its stderr normally reaches end-of-file at once, but Foundation's
    /// `readabilityHandler` is sometimes not called at end-of-file on Linux
    /// (swift-corelibs-foundation issue 3275), and a sibling spawned by a concurrent test can
    /// inherit the pipe's write end and hold it open; everything the child wrote is in the pipe by
    /// now, so after a short grace for the reader to drain it the log counts as closed anyway.
    func processEnded() {
        update { $0.processEnded = true }
        DispatchQueue.global().asyncAfter(deadline: .now() + 2) { [self] in
            logClosed()
            outputClosed()
        }
    }
    func logClosed() { update { $0.logClosed = true } }

    /// Returns true once `condition` holds of the log and the exit, false if `timeout` passes first.
    func wait(within timeout: TimeInterval, _ condition: @escaping @Sendable (String, Bool) -> Bool) async -> Bool {
        await withCheckedContinuation { continuation in
            let id: Int? = state.withLock { state in
                if condition(state.log, state.exited) { return nil }
                state.lastID += 1
                state.waiters.append(Waiter(id: state.lastID, condition: condition, continuation: continuation))
                return state.lastID
            }
            guard let id else { return continuation.resume(returning: true) }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout) { [self] in
                let waiter = state.withLock { state in
                    state.waiters.firstIndex { $0.id == id }.map { state.waiters.remove(at: $0) }
                }
                waiter?.continuation.resume(returning: false)
            }
        }
    }

    private func update(_ change: (inout State) -> Void) {
        let ready = state.withLock { state in
            change(&state)
            let ready = state.waiters.filter { $0.condition(state.log, state.exited) }
            let ids = Set(ready.map(\.id))
            state.waiters.removeAll { ids.contains($0.id) }
            return ready
        }
        for waiter in ready { waiter.continuation.resume(returning: true) }
    }
}
