import TesseraSupport

@testable import TesseraCrypto

/// Decodes lower- or upper-case hex, ignoring spaces; traps on malformed test data.
func hex(_ string: String) -> [UInt8] {
    guard let bytes = Hex.decode(string.filter { $0 != " " && $0 != "\n" }) else {
        preconditionFailure("malformed hex in a test vector")
    }
    return bytes
}

func hexString(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

extension SecretBytes {
    /// Test-only copy of the bytes, to compare with vectors.
    var bytesForTesting: [UInt8] { withUnsafeBytes { Array($0) } }
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
