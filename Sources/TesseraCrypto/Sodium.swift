import CSodium

/// libsodium must be initialised once before any of its functions are used: `sodium_init()`
/// picks the fastest implementations for this CPU and opens the system entropy source.
///
/// A `static let` gives exactly-once, thread-safe lazy initialisation (the runtime guards it
/// with `swift_once`), so no caller has to remember an explicit setup call. Every entry point of
/// this module that reaches libsodium calls ``ensureInitialized()`` first.
enum Sodium {
    /// `sodium_init()` returns 0 on first success, 1 if already initialised, -1 on failure.
    private static let initialised: Bool = sodium_init() >= 0

    /// Initialises libsodium on first use. A failure here means the process has no usable
    /// entropy source, which no caller could recover from, so it traps.
    @inline(__always)
    static func ensureInitialized() {
        precondition(initialised, "libsodium failed to initialise (sodium_init() < 0): no secure randomness available")
    }
}
