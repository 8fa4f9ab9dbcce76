import Foundation

#if canImport(Glibc)
import Glibc
#endif

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

    /// Makes every thread of this process allocate from glibc's main arena; call it first
    /// thing, before other threads start. `tessera-coordinator` does.
    ///
    /// glibc gives threads that contend for the allocator arenas of their own (up to 8 per
    /// core). Memory freed into one arena is reused only by the threads attached to it, so a
    /// server whose buffers are allocated on one event-loop thread and freed on another keeps
    /// several arenas' worth of free memory resident, and how much depends on scheduling. One
    /// arena costs no round time: small allocations stay uncontended, served by glibc's
    /// per-thread caches without the arena's lock.
    ///
    /// Returns whether the allocator took the setting (always `false` on other C libraries).
    @discardableResult
    public static func useOneAllocatorArena() -> Bool {
        #if canImport(Glibc)
        // `mallopt` is declared in <malloc.h>, which Swift's Glibc module leaves out: it is
        // looked up in the C library by name instead. `M_ARENA_MAX` is -8 in glibc's ABI.
        guard let program = dlopen(nil, RTLD_NOW), let symbol = dlsym(program, "mallopt") else { return false }
        typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
        let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
        let arenaMaximum: Int32 = -8
        return mallopt(arenaMaximum, 1) == 1
        #else
        return false
        #endif
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
