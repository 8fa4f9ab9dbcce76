import Crypto

/// Fresh keys for certificates the tests build by hand.
enum P256ForTests {
    static func newKey() -> P256.Signing.PrivateKey { P256.Signing.PrivateKey() }
}

/// Ed25519 keys for the signing-certificate tests.
enum Ed25519ForTests {
    static func newKey() -> Curve25519.Signing.PrivateKey { Curve25519.Signing.PrivateKey() }

    /// Checks an Ed25519 signature made with a seed the PKI handed out.
    static func signAndVerify(seed: [UInt8], publicKey: [UInt8], message: [UInt8]) throws -> Bool {
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        let signature = try key.signature(for: message)
        return try Curve25519.Signing.PublicKey(rawRepresentation: publicKey).isValidSignature(signature, for: message)
    }
}
