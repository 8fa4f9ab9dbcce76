import TesseraSupport
import Testing

@testable import TesseraCrypto

@Suite("SecretBytes and randomness")
struct SecretBytesTests {
    @Test("description, debugDescription and string interpolation never show the bytes")
    func redacted() {
        let secret = SecretBytes([0xde, 0xad, 0xbe, 0xef] + [UInt8](repeating: 0xab, count: 28))
        #expect(secret.description == "SecretBytes(32 bytes, redacted)")
        #expect(secret.debugDescription == "SecretBytes(32 bytes, redacted)")
        for rendered in [String(describing: secret), String(reflecting: secret), "\(secret)", "\([secret])"] {
            #expect(!rendered.lowercased().contains("dead"))
            #expect(!rendered.contains("222"))  // 0xde as decimal
            #expect(!rendered.lowercased().contains("abab"))
        }
        var generator = SplitMix64(seed: 1)
        let key = X25519PrivateKey(using: &generator)
        #expect(!"\(key)".contains(hexString(key.rawSecret.bytesForTesting)))
        #expect("\(key)".contains("redacted"))
    }

    @Test("copies share bytes; mutation copies first; equality compares contents")
    func valueSemantics() {
        var a = SecretBytes([1, 2, 3])
        let b = a
        a.withUnsafeMutableBytes { $0[0] = 9 }
        #expect(a.bytesForTesting == [9, 2, 3])
        #expect(b.bytesForTesting == [1, 2, 3])
        #expect(a != b)
        #expect(SecretBytes([1, 2, 3]) == b)
        #expect(SecretBytes([1, 2]) != b)
        #expect(SecretBytes(count: 4).bytesForTesting == [0, 0, 0, 0])
        #expect(SecretBytes(count: 0).count == 0)
        // Non-contiguous sequences are copied too.
        #expect(SecretBytes((0..<5).lazy.map { UInt8($0 * 2) }).bytesForTesting == [0, 2, 4, 6, 8])
        #expect(SecretBytes(UInt8(1)...UInt8(3)).bytesForTesting == [1, 2, 3])
    }

    @Test("secure random bytes have the requested length and differ between calls")
    func secureRandom() {
        let a = SecureRandom.bytes(32)
        let b = SecureRandom.bytes(32)
        #expect(a.count == 32 && b.count == 32)
        #expect(a != b)
        #expect(SecureRandom.bytes(0).isEmpty)
        #expect(SecureRandom.secret(16).count == 16)
        #expect(SecureRandom.secret(32) != SecureRandom.secret(32))
        var generator = SecureRandomGenerator()
        let draws = (0..<8).map { _ in generator.next() }
        #expect(Set(draws).count == 8)
    }

    @Test("copies of a secure generator share its batches and never replay each other's values")
    func secureGeneratorCopiesDoNotReplay() {
        var original = SecureRandomGenerator()
        _ = original.next()  // a batch is fetched and partly used
        var copy = original
        // Across several refills (8, 16, … then 512 words at a time).
        let fromOriginal = (0..<1_500).map { _ in original.next() }
        let fromCopy = (0..<1_500).map { _ in copy.next() }
        #expect(Set(fromOriginal + fromCopy).count == 3_000)
    }

    @Test("a secure generator fills blocks of any size with fresh, balanced words")
    func secureGeneratorFill() {
        var generator = SecureRandomGenerator()
        var first = [UInt64](repeating: 0, count: 100_003)
        var second = [UInt64](repeating: 0, count: 100_003)
        first.withUnsafeMutableBufferPointer { generator.fill($0) }
        second.withUnsafeMutableBufferPointer { generator.fill($0) }
        // Every word written (a zero word has probability 2^-64), and no word repeated within or
        // across the two calls (each call has its own key).
        #expect(!first.contains(0) && !second.contains(0))
        #expect(Set(first + second).count == 2 * 100_003)
        // Each bit is set in about half of the words: 6.4M bits, standard deviation of the
        // fraction 0.0002; 0.01 is 50 standard deviations.
        let ones = first.reduce(0) { $0 + $1.nonzeroBitCount }
        #expect(abs(Double(ones) / Double(64 * first.count) - 0.5) < 0.01)
        // Odd sizes and the empty buffer.
        var one: [UInt64] = [0]
        one.withUnsafeMutableBufferPointer { generator.fill($0) }
        #expect(one[0] != 0)
        var none: [UInt64] = []
        none.withUnsafeMutableBufferPointer { generator.fill($0) }
        #expect(none.isEmpty)
    }

    @Test("constant-time equality")
    func constantTime() {
        #expect(ConstantTime.isEqual([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.isEqual([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.isEqual([1, 2, 3], [1, 2]))
        #expect(ConstantTime.isEqual([], []))
    }

    @Test("errors describe their code and message")
    func errorDescription() {
        let error = CryptoError(code: .invalidShare, message: "share 3 is corrupt")
        #expect(error.description == "CryptoError.invalidShare: share 3 is corrupt")
        #expect(CryptoError.Code.invalidKey != .invalidLength)
    }
}

@Suite("X25519 and Ed25519")
struct KeyAgreementTests {
    @Test("both sides of a random exchange agree, and a third party gets another secret")
    func agreement() throws {
        let a = X25519PrivateKey()
        let b = X25519PrivateKey()
        let c = X25519PrivateKey()
        let ab = try a.sharedSecret(with: b.publicKey)
        #expect(ab == (try b.sharedSecret(with: a.publicKey)))
        #expect(ab != (try a.sharedSecret(with: c.publicKey)))
    }

    @Test("keys from a seeded generator are reproducible, and restorable from their raw secret")
    func deterministic() throws {
        var g1 = SplitMix64(seed: 42)
        var g2 = SplitMix64(seed: 42)
        let k1 = X25519PrivateKey(using: &g1)
        let k2 = X25519PrivateKey(using: &g2)
        #expect(k1.publicKey == k2.publicKey)
        #expect(k1.rawSecret == k2.rawSecret)
        let restored = try X25519PrivateKey(rawRepresentation: k1.rawSecret.bytesForTesting)
        #expect(restored.publicKey == k1.publicKey)
        #expect(try X25519PrivateKey(rawSecret: k1.rawSecret).publicKey == k1.publicKey)
        let viaClosure = k1.withUnsafeSecretBytes { Array($0) }
        #expect(viaClosure == k1.rawSecret.bytesForTesting)
    }

    @Test("low-order points are rejected instead of yielding a known all-zero secret")
    func lowOrderPoints() throws {
        let key = X25519PrivateKey()
        var one = [UInt8](repeating: 0, count: 32)
        one[0] = 1
        // 0 and 1 have small order; so does this point of order 8 (listed in libsodium's blocklist).
        let lowOrder = [
            [UInt8](repeating: 0, count: 32),
            one,
            hex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        ]
        for point in lowOrder {
            let code = thrownCode { _ = try key.sharedSecret(with: X25519PublicKey(rawRepresentation: point)) }
            #expect(code == .invalidKey)
        }
    }

    @Test("wrong key lengths are rejected with invalidLength")
    func lengths() {
        #expect(
            thrownCode { _ = try X25519PrivateKey(rawRepresentation: [UInt8](repeating: 1, count: 31)) }
                == .invalidLength)
        #expect(
            thrownCode { _ = try X25519PublicKey(rawRepresentation: [UInt8](repeating: 1, count: 33)) }
                == .invalidLength)
        #expect(thrownCode { _ = try Ed25519PrivateKey(seed: [UInt8](repeating: 1, count: 16)) } == .invalidLength)
        #expect(thrownCode { _ = try Ed25519PublicKey(rawRepresentation: [UInt8]()) } == .invalidLength)
    }

    @Test("Ed25519 signatures verify only for the signed message, key and an intact signature")
    func signatures() throws {
        let key = Ed25519PrivateKey()
        let other = Ed25519PrivateKey()
        let message = Array("round 7: public keys of participants 1...12".utf8)
        var signature = key.signature(for: message)
        #expect(signature.count == 64)
        #expect(key.publicKey.isValidSignature(signature, for: message))
        #expect(!other.publicKey.isValidSignature(signature, for: message))
        #expect(!key.publicKey.isValidSignature(Array(signature.dropLast()), for: message))
        signature[10] ^= 0x01
        #expect(!key.publicKey.isValidSignature(signature, for: message))
        let restored = try Ed25519PrivateKey(seed: key.rawSeed.bytesForTesting)
        #expect(restored.publicKey == key.publicKey)
    }
}

@Suite("Key derivation")
struct KeyDerivationTests {
    let secret = SecretBytes((0..<32).map { UInt8($0 * 7 & 0xff) })
    let base = KeyContext(purpose: "mask", roundID: 3, firstID: 5, secondID: 9)

    @Test("both participants derive the same key whatever the id order")
    func symmetric() {
        let swapped = KeyContext(purpose: "mask", roundID: 3, firstID: 9, secondID: 5)
        #expect(
            KeyDerivation.deriveKey(from: secret, context: base)
                == KeyDerivation.deriveKey(from: secret, context: swapped))
    }

    @Test("a different purpose, round, pair, secret or length gives a different key")
    func separated() {
        let key = KeyDerivation.deriveKey(from: secret, context: base)
        var variants = [KeyContext]()
        variants.append(KeyContext(purpose: "share-encryption", roundID: 3, firstID: 5, secondID: 9))
        variants.append(KeyContext(purpose: "mask", roundID: 4, firstID: 5, secondID: 9))
        variants.append(KeyContext(purpose: "mask", roundID: 3, firstID: 5, secondID: 10))
        variants.append(KeyContext(purpose: "mask", roundID: 3, firstID: 6, secondID: 9))
        // Length prefixing: moving bytes between the purpose and the integers must not collide.
        variants.append(KeyContext(purpose: "mask\u{3}", roundID: 0, firstID: 5, secondID: 9))
        for context in variants {
            #expect(KeyDerivation.deriveKey(from: secret, context: context) != key)
        }
        #expect(KeyDerivation.deriveKey(from: SecretBytes([UInt8](repeating: 1, count: 32)), context: base) != key)
        let long = KeyDerivation.deriveKey(from: secret, context: base, length: 64)
        #expect(long.count == 64)
        #expect(Array(long.bytesForTesting.prefix(32)) != key.bytesForTesting)
    }

    @Test("the encoding is length-prefixed and orders the ids")
    func encoding() {
        let bytes = KeyDerivation.encode(KeyContext(purpose: "ab", roundID: 0x0102, firstID: 7, secondID: 2))
        #expect(
            bytes == Array("tessera-kdf-v1".utf8) + [
                2, 0, 0, 0, 0x61, 0x62, 2, 1, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0,
            ])
    }
}

@Suite("AEAD")
struct AEADTests {
    let key = SecretBytes([UInt8](repeating: 0x42, count: 32))
    let aad = Array("round=7 stage=shareKeys from=3 to=9".utf8)

    @Test("seal then open returns the plaintext, for empty and long messages")
    func roundTrip() throws {
        for plaintext in [[], [1], Array(0..<200).map { UInt8($0) }] as [[UInt8]] {
            let sealed = try AEAD.seal(plaintext, key: key, associatedData: aad)
            #expect(sealed.count == plaintext.count + AEAD.overhead)
            #expect(try AEAD.open(sealed, key: key, associatedData: aad) == plaintext)
        }
        #expect(try AEAD.open(try AEAD.seal([5], key: key, associatedData: []), key: key, associatedData: []) == [5])
    }

    @Test("every seal uses a fresh nonce")
    func freshNonce() throws {
        let a = try AEAD.seal([1, 2, 3], key: key, associatedData: aad)
        let b = try AEAD.seal([1, 2, 3], key: key, associatedData: aad)
        #expect(a.prefix(24) != b.prefix(24))
        #expect(a != b)
    }

    @Test("any altered byte (nonce, ciphertext, tag) fails authentication")
    func tamper() throws {
        let sealed = try AEAD.seal(Array("share bytes".utf8), key: key, associatedData: aad)
        for index in [0, 23, 24, 30, sealed.count - 16, sealed.count - 1] {
            var altered = sealed
            altered[index] ^= 0x80
            #expect(thrownCode { _ = try AEAD.open(altered, key: key, associatedData: aad) } == .authenticationFailed)
        }
    }

    @Test("wrong associated data or wrong key fails authentication")
    func wrongContext() throws {
        let sealed = try AEAD.seal([9, 9, 9], key: key, associatedData: aad)
        #expect(thrownCode { _ = try AEAD.open(sealed, key: key, associatedData: aad + [0]) } == .authenticationFailed)
        #expect(thrownCode { _ = try AEAD.open(sealed, key: key, associatedData: []) } == .authenticationFailed)
        let otherKey = SecretBytes([UInt8](repeating: 0x43, count: 32))
        #expect(thrownCode { _ = try AEAD.open(sealed, key: otherKey, associatedData: aad) } == .authenticationFailed)
    }

    @Test("truncated input is invalidLength, truncated tag is authenticationFailed, bad key is invalidKey")
    func malformed() throws {
        let sealed = try AEAD.seal([1, 2, 3, 4], key: key, associatedData: aad)
        #expect(
            thrownCode { _ = try AEAD.open(Array(sealed.prefix(39)), key: key, associatedData: aad) } == .invalidLength)
        #expect(thrownCode { _ = try AEAD.open([], key: key, associatedData: aad) } == .invalidLength)
        #expect(
            thrownCode { _ = try AEAD.open(Array(sealed.dropLast()), key: key, associatedData: aad) }
                == .authenticationFailed)
        let shortKey = SecretBytes([UInt8](repeating: 1, count: 16))
        #expect(thrownCode { _ = try AEAD.seal([1], key: shortKey, associatedData: []) } == .invalidKey)
        #expect(thrownCode { _ = try AEAD.open(sealed, key: shortKey, associatedData: aad) } == .invalidKey)
    }
}
