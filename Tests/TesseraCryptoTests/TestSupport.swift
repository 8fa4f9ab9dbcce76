@testable import TesseraCrypto

/// Decodes lower- or upper-case hex, ignoring spaces; traps on malformed test data.
func hex(_ string: String) -> [UInt8] {
    let digits = Array(string.utf8).filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") }
    precondition(digits.count % 2 == 0, "odd-length hex in a test vector")
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: preconditionFailure("bad hex digit in a test vector")
        }
    }
    return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
}

func hexString(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

extension SecretBytes {
    /// Test-only copy of the bytes, to compare with vectors.
    var bytesForTesting: [UInt8] { withUnsafeBytes { Array($0) } }
}

/// SplitMix64: a tiny, fully specified seeded generator, so "random" test inputs are the same
/// on every run and every machine.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Returns a fixed list of values in order, then repeats it: lets a test know every
/// coefficient a function drew.
struct ScriptedGenerator: RandomNumberGenerator {
    var values: [UInt64]
    var index = 0
    mutating func next() -> UInt64 {
        defer { index += 1 }
        return values[index % values.count]
    }
}

/// Runs `body`, which must throw a `CryptoError`, and returns its code (nil if it did not throw
/// one), so tests can write `#expect(thrownCode { ... } == .invalidLength)`.
func thrownCode(_ body: () throws -> Void) -> CryptoError.Code? {
    do {
        try body()
        return nil
    } catch let error as CryptoError {
        return error.code
    } catch {
        return nil
    }
}
