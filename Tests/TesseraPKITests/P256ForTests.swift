import Crypto

/// Fresh keys for certificates the tests build by hand.
enum P256ForTests {
    static func newKey() -> P256.Signing.PrivateKey { P256.Signing.PrivateKey() }
}
