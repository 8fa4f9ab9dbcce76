import Foundation
import Testing

@testable import TesseraData
@testable import TesseraTensor

#if canImport(Glibc)
import Glibc
#endif

/// The streaming promise of `CSVLoader`: memory grows with the parsed floats, not with the
/// text of the file.
@Suite(.serialized) struct CSVStreamingMemory {
    /// Reads a `kB` field of `/proc/self/status`, in bytes.
    private static func status(_ field: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let digits = line.dropFirst(field.count + 1).filter(\.isNumber)
            return Int(digits).map { $0 * 1024 }
        }
        return nil
    }

    /// Resets the peak-RSS counter (VmHWM) to the current RSS, so the next reading is the peak
    /// of what runs in between (Linux ≥ 4.0).
    private static func resetPeak() -> Bool {
        (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil
    }

    /// Hands memory that malloc keeps after `free` back to the system (glibc's `malloc_trim`,
    /// looked up at run time), so that a repeated measurement cannot hide an allocation by
    /// reusing what the previous attempt freed.
    private static func returnFreedMemory() {
        #if canImport(Glibc)
        typealias Trim = @convention(c) (Int) -> Int32
        if let symbol = dlsym(nil, "malloc_trim") {
            _ = unsafeBitCast(symbol, to: Trim.self)(0)
        }
        #endif
    }

    /// Writes a CSV of about `targetBytes` whose numbers are long (15 characters each), so the
    /// text is ~4× the size of the floats it holds.
    private static func writeLargeCSV(to url: URL, targetBytes: Int, columns: Int) throws -> Int {
        var header = (0..<columns).map { "feature_\($0)" }.joined(separator: ",")
        header += ",label\n"
        // 64 distinct rows, repeated: fast to write even from an unoptimised test build.
        let rows: [[UInt8]] = (0..<64).map { r in
            let cells = (0..<columns).map { c in
                let value = Double((r * 7919 + c * 104_729) % 1_000_000) / 97.0 - 5000
                let text = String(format: "%+.9f", value)
                return String(text.prefix(15))
            }
            return Array((cells.joined(separator: ",") + ",\(r % 10)\n").utf8)
        }
        _ = FileManager.default.createFile(atPath: url.path, contents: Data(header.utf8))
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        try handle.seekToEnd()
        var block: [UInt8] = []
        block.reserveCapacity(1 << 20 + 4096)
        var written = header.utf8.count
        var count = 0
        while written < targetBytes {
            let row = rows[count % rows.count]
            block += row
            written += row.count
            count += 1
            if block.count >= 1 << 20 {
                try handle.write(contentsOf: block)
                block.removeAll(keepingCapacity: true)
            }
        }
        try handle.write(contentsOf: block)
        return count
    }

    @Test(.timeLimit(.minutes(1)))
    func peakMemoryTracksTheFloatsNotTheText() throws {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("large.csv")
            let columns = 12
            let fileBytes = 24 << 20
            let rows = try Self.writeLargeCSV(to: url, targetBytes: fileBytes, columns: columns)
            let outputBytes = rows * (columns + 1) * MemoryLayout<Float>.size

            guard Self.resetPeak(), Self.status("VmHWM") != nil else {
                // Not Linux, or /proc is locked down: the memory bound cannot be observed here.
                let data = try CSVLoader.load(url, options: CSVOptions(labelColumn: "label"))
                #expect(data.count == rows)
                return
            }
            // Other suites may run in parallel in this process and allocate at the same time,
            // which can only inflate a reading; so keep the smallest of up to three. Every
            // reading is taken against the RSS before the *first* attempt: memory that malloc
            // kept from an earlier attempt is then counted against the loader, never used to
            // hide an allocation. Loading the whole text would add ≥ 24 MiB every time.
            let bound = outputBytes * 3 / 2 + (8 << 20)
            Self.returnFreedMemory()
            let baseline = Self.status("VmRSS")!
            var smallest = Int.max
            for _ in 0..<3 {
                Self.returnFreedMemory()
                _ = Self.resetPeak()
                let data = try CSVLoader.load(url, options: CSVOptions(labelColumn: "label"))
                let peak = Self.status("VmHWM")!
                #expect(data.count == rows)
                #expect(data.features.shape == [rows, columns])
                #expect(data.classCount == 10)
                smallest = min(smallest, peak - baseline)
                if smallest <= bound { break }
            }
            #expect(
                smallest <= bound,
                "peak RSS grew by \(smallest >> 20) MiB loading a \(fileBytes >> 20) MiB CSV into \(outputBytes >> 20) MiB of floats (bound \(bound >> 20) MiB)"
            )
        }
    }
}
