import Foundation

/// Prints benchmark figures twice: once for people, once as a `BENCH <key> <value>` line that
/// tools can diff between runs. Every benchmark in Tessera reports through this type so the
/// machine-readable format stays the same everywhere.
public struct BenchReporter: Sendable {
    public init() {}

    /// A heading for a group of figures.
    public func section(_ title: String) {
        print("")
        print("== \(title) ==")
        flush()
    }

    /// A free-form line of context (what was measured, on what shapes).
    public func note(_ text: String) {
        print("   \(text)")
        flush()
    }

    /// One figure: a readable line, then the `BENCH` line.
    public func figure(_ key: String, _ value: Double, unit: String, label: String) {
        print("   \(Self.pad(label, 58)) \(Self.leftPad(String(format: "%.3f", value), 14)) \(unit)")
        print("BENCH \(key) \(Self.format(value))")
        flush()
    }

    /// A figure whose value is not a single number (for example "k,t" pairs).
    public func figure(_ key: String, text: String, label: String) {
        print("   \(Self.pad(label, 58)) \(Self.leftPad(text, 14))")
        print("BENCH \(key) \(text)")
        flush()
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    static func leftPad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.4f", value)
    }

    private func flush() { fflush(nil) }
}

/// Wall-clock timing helpers shared by the benchmarks.
public enum BenchClock {
    /// Seconds taken by `body`, measured on the monotonic clock.
    public static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Runs `body` repeatedly and returns the best (smallest) time of `repeats` runs, which is
    /// the least noisy estimate on a shared machine.
    public static func best(repeats: Int, _ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<max(1, repeats) {
            best = min(best, try seconds(body))
        }
        return best
    }

    /// The median of `values` (NaN when empty): how interleaved runs and their ratios are summarised.
    public static func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return .nan }
        return sorted.count % 2 == 1
            ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }
}

/// Runs a reference script of `Benchmarks/reference` and reads the `key value` lines it prints.
enum PythonReference {
    /// The figures `script` printed, by key; `nil` when the script or the interpreter is missing
    /// or the script failed (the caller reports the reference as unavailable).
    static func run(
        python: String, script name: String, arguments: [String], environment: [String: String]? = nil
    ) throws -> [String: Double]? {
        guard let script = TensorBenchmark.locateReference(name) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [python, script.path] + arguments
        if let environment { process.environment = environment }
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let text = String(data: data, encoding: .utf8) else { return nil }
        var values: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Double(parts[1]) { values[String(parts[0])] = value }
        }
        return values
    }
}
