import TesseraSupport
import Testing

@testable import TesseraCrypto

/// Published test vectors. Each value was taken from the cited document; a mismatch means the
/// wrapper calls the library wrongly (argument order, clamping, counter layout, key layout).
@Suite("Known-answer vectors")
struct KnownAnswerTests {
    // MARK: X25519, RFC 7748

    @Test("RFC 7748 §6.1: Alice and Bob's key pairs and shared secret")
    func x25519DiffieHellman() throws {
        let alice = try X25519PrivateKey(
            rawRepresentation: hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"))
        let bob = try X25519PrivateKey(
            rawRepresentation: hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"))
        #expect(
            hexString(alice.publicKey.rawRepresentation)
                == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        #expect(
            hexString(bob.publicKey.rawRepresentation)
                == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
        let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
        #expect(hexString(try alice.sharedSecret(with: bob.publicKey).bytesForTesting) == shared)
        #expect(hexString(try bob.sharedSecret(with: alice.publicKey).bytesForTesting) == shared)
    }

    @Test(
        "RFC 7748 §5.2: scalar multiplication vectors",
        arguments: [
            (
                "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
                "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
            ),
            (
                "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
                "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
                "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957"
            ),
        ]
    )
    func x25519ScalarMultiplication(scalar: String, point: String, expected: String) throws {
        let key = try X25519PrivateKey(rawRepresentation: hex(scalar))
        let peer = try X25519PublicKey(rawRepresentation: hex(point))
        #expect(hexString(try key.sharedSecret(with: peer).bytesForTesting) == expected)
    }

    @Test("RFC 7748 §5.2: iterated scalar multiplication, 1 and 1000 iterations")
    func x25519Iterated() throws {
        var k = [UInt8](repeating: 0, count: 32)
        k[0] = 9
        var u = k
        for iteration in 1...1000 {
            let result = try X25519PrivateKey(rawRepresentation: k).sharedSecret(
                with: X25519PublicKey(rawRepresentation: u))
            u = k
            k = result.bytesForTesting
            if iteration == 1 {
                #expect(hexString(k) == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079")
            }
        }
        #expect(hexString(k) == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51")
    }

    // MARK: Ed25519, RFC 8032 §7.1

    @Test(
        "RFC 8032 §7.1: Ed25519 TEST 1, 2 and 3",
        arguments: [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
            ),
            (
                "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
                "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
                "af82",
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"
            ),
        ]
    )
    func ed25519(seed: String, publicKey: String, message: String, signature: String) throws {
        let key = try Ed25519PrivateKey(seed: hex(seed))
        #expect(hexString(key.publicKey.rawRepresentation) == publicKey)
        #expect(hexString(key.signature(for: hex(message))) == signature)
        #expect(key.rawSeed.bytesForTesting == hex(seed))
        let verifier = try Ed25519PublicKey(rawRepresentation: hex(publicKey))
        #expect(verifier.isValidSignature(hex(signature), for: hex(message)))
        #expect(!verifier.isValidSignature(hex(signature), for: hex(message) + [0]))
    }

    // MARK: AES-128-CTR, NIST SP 800-38A F.5.1

    static let nistKey = "2b7e151628aed2a6abf7158809cf4f3c"
    static let nistCounter = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff"
    static let nistPlaintext =
        "6bc1bee22e409f96e93d7e117393172a" + "ae2d8a571e03ac9c9eb76fac45af8e51"
        + "30c81c46a35ce411e5fbc1191a0a52ef" + "f69f2445df4f9b17ad2b417be66c3710"
    static let nistCiphertext =
        "874d6191b620e3261bef6864990db6ce" + "9806f66b7970fdff8617187bb9fffdff"
        + "5ae4df3edbd5d35e5b4f09020db03eab" + "1e031dda2fbe03d1792170a0f3009cee"

    @Test("NIST SP 800-38A F.5.1: CTR-AES128.Encrypt, and decryption back")
    func aesCTR() throws {
        let ciphertext = try AESCTR.encrypt(key: hex(Self.nistKey), iv: hex(Self.nistCounter), hex(Self.nistPlaintext))
        #expect(hexString(ciphertext) == Self.nistCiphertext)
        let plaintext = try AESCTR.encrypt(key: hex(Self.nistKey), iv: hex(Self.nistCounter), ciphertext)
        #expect(hexString(plaintext) == Self.nistPlaintext)
    }

    @Test("FIPS 180-4 SHA-256: one million 'a', fed in uneven pieces")
    func sha256MillionA() {
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(Hex.encode(SHA256.hash(million)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        var hasher = SHA256()
        var offset = 0
        for piece in [1, 63, 64, 65, 4096, 333_333] + [Int](repeating: 100_000, count: 7) {
            hasher.update(Array(million[offset..<min(offset + piece, million.count)]))
            offset = min(offset + piece, million.count)
        }
        hasher.update(Array(million[offset...]))
        #expect(Hex.encode(hasher.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test("A copied SHA-256 hasher forks: each copy finishes its own input")
    func sha256CopiesFork() {
        var first = SHA256()
        first.update(Array("abc".utf8))
        var second = first
        second.update(Array("dbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
        #expect(Hex.encode(first.finalize()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Hex.encode(second.finalize()) == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }

    @Test("MaskPRG with seed = key ‖ counter produces the NIST keystream as little-endian words")
    func maskPRGIsTheNISTKeystream() throws {
        let keystream: [UInt8] = zip(hex(Self.nistPlaintext), hex(Self.nistCiphertext)).map { $0 ^ $1 }
        let expected = stride(from: 0, to: 64, by: 4).map { (i: Int) -> UInt32 in
            (0..<4).reduce(UInt32(0)) { word, byte in word | UInt32(keystream[i + byte]) << UInt32(8 * byte) }
        }
        let prg = try MaskPRG(seed: SecretBytes(hex(Self.nistKey) + hex(Self.nistCounter)))
        var words = [UInt32](repeating: 0, count: 16)
        try words.withUnsafeMutableBufferPointer { try prg.fill($0) }
        #expect(words == expected)
    }

    // MARK: XChaCha20-Poly1305, draft-irtf-cfrg-xchacha-03 §A.3.1

    @Test("draft-irtf-cfrg-xchacha-03 A.3.1: AEAD_XChaCha20_Poly1305")
    func xchacha20Poly1305() throws {
        let key = SecretBytes(hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"))
        let nonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657")
        let aad = hex("50515253c0c1c2c3c4c5c6c7")
        let plaintext = Array(
            "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it."
                .utf8)
        let expected =
            "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
            + "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
            + "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
            + "21f9664c97637da9768812f615c68b13b52e"
            + "c0875924c1c7987947deafd8780acf49"
        let sealed = try AEAD.seal(plaintext, key: key, nonce: nonce, associatedData: aad)
        #expect(Array(sealed.prefix(24)) == nonce)
        #expect(hexString(Array(sealed.dropFirst(24))) == expected)
        #expect(try AEAD.open(sealed, key: key, associatedData: aad) == plaintext)
    }

    // MARK: Key derivation (pinned; computed independently with Python's hashlib.blake2b)

    @Test("KeyDerivation matches keyed BLAKE2b over the documented encoding")
    func keyDerivationPinned() {
        let secret = SecretBytes(Array(0..<32) as [UInt8])
        let context = KeyContext(purpose: "tessera.secagg.share-encryption", roundID: 7, firstID: 12, secondID: 3)
        #expect(
            hexString(KeyDerivation.deriveKey(from: secret, context: context).bytesForTesting)
                == "477a4e10d2cb3035990581f30f75447f2781af03ad7a6c0a34db4aa717a847d6"
        )
        #expect(
            hexString(KeyDerivation.deriveKey(from: secret, context: context, length: 64).bytesForTesting)
                == "05f2dd6af09b2b7c03501cb4d03b57c70b079bc5fa2369a474e427438da91ce7684fc2bfdbccaff5d4dc6b341c2a6bacc3c456958c3f57016e183b617f775e66"
        )
    }
}
