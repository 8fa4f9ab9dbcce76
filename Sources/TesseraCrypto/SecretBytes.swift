import CSodium

/// Bytes of key material: private keys, shared secrets, derived keys, mask seeds.
///
/// Why a dedicated type instead of `[UInt8]`:
/// - The bytes live in one heap buffer owned by a final class, and that buffer is overwritten
///   with `sodium_memzero` when the last copy goes away. `sodium_memzero` is not optimised out,
///   unlike a plain loop writing zeros just before a free.
/// - `description`, `debugDescription` and reflection never show the bytes, so a secret that
///   reaches a log line, a `print` or a test failure message is redacted, not leaked.
/// - Equality uses `sodium_memcmp`, whose running time does not depend on where the first
///   difference is.
///
/// `SecretBytes` is a value type with copy-on-write: copies share one buffer until one of them
/// is mutated through ``withUnsafeMutableBytes(_:)``. Arrays handed out by APIs such as
/// `Array(secret)` are not wiped; reach the bytes through ``withUnsafeBytes(_:)`` instead.
/// The buffer is not `mlock`ed: the process's locked-memory limit is small, and Tessera's
/// threat model is a curious coordinator, not an attacker reading this host's swap.
public struct SecretBytes: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The owning buffer. `@unchecked Sendable` is sound because the buffer is only written
    /// while it is uniquely referenced (during initialisation, or after copy-on-write).
    final class Storage: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
        let count: Int

        init(count: Int) {
            precondition(count >= 0, "SecretBytes count must not be negative")
            self.count = count
            // Allocate at least one byte so the pointer is never dangling for empty secrets.
            self.pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 16)
            self.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
        }

        deinit {
            sodium_memzero(pointer, max(count, 1))
            pointer.deallocate()
        }

        var buffer: UnsafeMutableRawBufferPointer {
            UnsafeMutableRawBufferPointer(start: pointer, count: count)
        }
    }

    private var storage: Storage

    /// `count` zero bytes, to be filled through ``withUnsafeMutableBytes(_:)``.
    public init(count: Int) {
        Sodium.ensureInitialized()
        self.storage = Storage(count: count)
    }

    /// Copies `bytes` into wiped-on-release storage. The source sequence is not wiped; prefer
    /// ``init(count:initializingWith:)`` when the bytes are produced in place.
    public init(_ bytes: some Sequence<UInt8>) {
        let copied: SecretBytes? = bytes.withContiguousStorageIfAvailable { source in
            SecretBytes(count: source.count) { destination in
                if let base = source.baseAddress {
                    destination.baseAddress!.copyMemory(from: base, byteCount: source.count)
                }
            }
        }
        if let copied {
            self = copied
            return
        }
        // Not contiguous: gather into a temporary array, copy it, then wipe the temporary.
        var array = Array(bytes)
        self.init(count: array.count)
        array.withUnsafeMutableBytes { source in
            if let base = source.baseAddress {
                storage.pointer.copyMemory(from: base, byteCount: source.count)
                sodium_memzero(base, source.count)
            }
        }
    }

    /// Creates `count` bytes and lets `body` write them in place, so the secret never exists in
    /// an unwiped temporary.
    public init(count: Int, initializingWith body: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        self.init(count: count)
        try body(storage.buffer)
    }

    /// The number of bytes.
    public var count: Int { storage.count }

    /// Read access to the bytes. Do not let the pointer escape `body`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage.buffer))
    }

    /// Write access to the bytes; copies the buffer first if another value shares it.
    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = Storage(count: storage.count)
            copy.pointer.copyMemory(from: storage.pointer, byteCount: storage.count)
            storage = copy
        }
        return try body(storage.buffer)
    }

    /// Constant-time comparison (for equal lengths) via `sodium_memcmp`. Lengths are public.
    public static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        guard lhs.count == rhs.count else { return false }
        if lhs.storage === rhs.storage { return true }
        return sodium_memcmp(lhs.storage.pointer, rhs.storage.pointer, lhs.count) == 0
    }

    public var description: String { "SecretBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["count": count]) }
}
