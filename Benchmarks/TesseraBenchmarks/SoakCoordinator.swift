import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One `tessera-coordinator` process of the soak, watched from outside through `/proc`: its
/// resident memory and its open file descriptors are the coordinator's own, not this process's.
///
/// It starts through `/bin/sh` so that its soft file-descriptor limit can be set to what a
/// service usually gets (`ulimit -S -n`), whatever this process raised its own to for the flood.
/// ``stop()`` sends SIGTERM (a graceful stop: completed rounds are written) and SIGKILL after a
/// grace period, so no coordinator outlives its phase.
///
/// `@unchecked Sendable`: every stored property is set once in `init`; `Process` is only asked
/// whether it runs and told to terminate, which it allows from any thread.
final class SoakCoordinator: @unchecked Sendable {
    /// What `/proc` says of the coordinator at one instant.
    struct Sample: Sendable {
        var residentKB: Int
        var peakResidentKB: Int
        var openFiles: Int
    }

    let port: Int
    let pid: Int32
    private let process: Process
    private let log: URL

    /// Starts the coordinator on 127.0.0.1 (port 0) for the experiment file `experiment`, and
    /// returns once it listens. `fileLimit` 0 leaves the inherited limit.
    init(
        experiment: URL, pki: SoakPKI, fileLimit: Int, extraArguments: [String], directory: URL
    ) async throws {
        guard
            let binary = Bundle.main.executableURL?.deletingLastPathComponent().appendingPathComponent(
                "tessera-coordinator"),
            FileManager.default.isExecutableFile(atPath: binary.path)
        else {
            throw BenchmarkError("tessera-coordinator is not built next to this binary (make soak builds it)")
        }
        let arguments =
            [
                "--experiment", experiment.path, "--listen", "127.0.0.1:0", "--tls-dir", pki.coordinatorIdentity.path,
                "--ca", pki.coordinatorCADirectory.path, "--results", directory.appendingPathComponent("results").path,
                "--state", directory.appendingPathComponent("state").path,
            ] + extraArguments
        let command = [binary.path] + arguments
        let process = Process()
        if fileLimit > 0 {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", "ulimit -S -n \(fileLimit) && exec \"$0\" \"$@\""] + command
        } else {
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
        }
        let stdout = directory.appendingPathComponent("coordinator.out")
        log = directory.appendingPathComponent("coordinator.log")
        _ = FileManager.default.createFile(atPath: stdout.path, contents: nil)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: stdout)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        self.process = process
        pid = process.processIdentifier
        Self.running.withLock { _ = $0.insert(process.processIdentifier) }

        // The port line comes within seconds; a coordinator that neither reports it nor exits
        // within a minute is stopped.
        let deadline = ContinuousClock.now + .seconds(60)
        var port: Int?
        while port == nil, process.isRunning, ContinuousClock.now < deadline {
            let text = (try? String(contentsOf: stdout, encoding: .utf8)) ?? ""
            port = text.split(separator: "\n").first { $0.hasPrefix("listening on port ") }
                .flatMap { Int($0.dropFirst("listening on port ".count)) }
            if port == nil { try? await Task.sleep(for: .milliseconds(50)) }
        }
        guard let port else {
            let pid = process.processIdentifier
            if process.isRunning { kill(pid, SIGKILL) }
            Self.running.withLock { _ = $0.remove(pid) }
            throw BenchmarkError("the coordinator did not start:\n\(Self.tail(of: log))")
        }
        self.port = port
    }

    var isRunning: Bool { process.isRunning }

    /// The coordinators running now: killed if the soak itself is interrupted.
    private static let running = Mutex<Set<Int32>>([])

    /// Makes SIGINT and SIGTERM kill the running coordinators before this process exits, so an
    /// interrupted soak leaves none behind. Keep the returned sources until the soak ends.
    static func killOnInterrupt() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { signal in
            Glibc.signal(signal, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signal, queue: .global())
            source.setEventHandler {
                for pid in running.withLock({ $0 }) { kill(pid, SIGKILL) }
                exit(128 + signal)
            }
            source.resume()
            return source
        }
    }

    /// The coordinator's resident memory and open descriptors now; `nil` once it has exited.
    func sample() -> Sample? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let resident = Self.kilobytes("VmRSS:", in: status), let peak = Self.kilobytes("VmHWM:", in: status),
            let files = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
        else { return nil }
        return Sample(residentKB: resident, peakResidentKB: peak, openFiles: files.count)
    }

    /// Waits up to `timeout` for the coordinator to exit on its own (its experiment finished).
    func waitForExit(within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        return !process.isRunning
    }

    /// Stops the coordinator (SIGTERM, then SIGKILL after `grace`) and returns its log.
    @discardableResult
    func stop(grace: Duration = .seconds(30)) async -> String {
        if process.isRunning {
            process.terminate()
            if !(await waitForExit(within: grace)) {
                kill(pid, SIGKILL)
                _ = await waitForExit(within: .seconds(5))
            }
        }
        Self.running.withLock { _ = $0.remove(pid) }
        return logText
    }

    /// How the coordinator ended, if it has: "exit status N" or "signal N" (a crash).
    var ending: String? {
        guard !process.isRunning else { return nil }
        switch process.terminationReason {
        case .exit: return "exit status \(process.terminationStatus)"
        case .uncaughtSignal: return "signal \(process.terminationStatus)"
        @unknown default: return "status \(process.terminationStatus)"
        }
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// The rounds the coordinator reported completed when it stopped ("N of M rounds completed"),
    /// or else the round summaries it logged as completed.
    func completedRounds() -> Int {
        let lines = logText.split(separator: "\n")
        for line in lines.reversed() {
            guard let range = line.range(of: " rounds completed") else { continue }
            let head = line[..<range.lowerBound].split(separator: " ")
            if head.count >= 3, head[head.count - 2] == "of", let completed = Int(head[head.count - 3]) {
                return completed
            }
        }
        return lines.filter { $0.contains(": completed, cohort") }.count
    }

    static func tail(of log: URL, lines: Int = 30) -> String {
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    func logTail(lines: Int = 30) -> String { Self.tail(of: log, lines: lines) }

    private static func kilobytes(_ field: String, in status: String) -> Int? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }) else { return nil }
        // "VmRSS:	  123456 kB"
        let fields = line.dropFirst(field.count).split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, fields[1] == "kB" else { return nil }
        return Int(fields[0])
    }
}
