import Foundation

/// This process's memory, as the kernel counts it.
public enum ProcessMemory {
    /// The peak resident set size (Linux `VmHWM`), in bytes; `nil` where `/proc` does not
    /// report it.
    public static func peakResidentBytes() -> Int? {
        residentField("VmHWM:")
    }

    /// The current resident set size (Linux `VmRSS`), in bytes.
    public static func residentBytes() -> Int? {
        residentField("VmRSS:")
    }

    private static func residentField(_ name: String) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name) })
        else { return nil }
        // "VmHWM:	  123456 kB"
        let fields = line.dropFirst(name.count).split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, let value = Int(fields[0]), fields[1] == "kB" else { return nil }
        return value * 1024
    }
}
