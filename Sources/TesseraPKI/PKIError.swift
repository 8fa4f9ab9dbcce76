/// An error from the federation's PKI: creating or loading the CA, issuing or revoking a
/// certificate, or checking a peer's certificate on connection.
///
/// Messages name the file, the directory or the site involved so an operator knows what to fix.
/// They never contain key material: errors raised while parsing a private key keep no underlying
/// cause, because parser errors may quote the bytes they failed on.
public struct PKIError: Error, Sendable, Hashable {
    /// What went wrong, in a form a caller can branch on (for example, a coordinator tells a
    /// revoked site apart from a misconfigured one in its audit log).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: String, Hashable, Sendable {
            case invalidSiteName
            case alreadyExists
            case notFound
            case io
            case invalidPEM
            case invalidKey
            case invalidCertificate
            case invalidRevocationList
            case untrustedIssuer
            case expired
            case notYetValid
            case missingClientAuth
            case invalidIdentity
            case revoked
            case policyFailure
            case unknownSite
            case invalidSerial
            case insecurePermissions
            case wrongPurpose
            case wrongKeyType
            case wrongRole
            case hostMismatch
            case invalidSignature
            case tooLarge
            case exposedCAKey
        }

        private let wrapped: Wrapped
        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        public var description: String { wrapped.rawValue }

        /// A site name outside `[A-Za-z0-9._-]{1,64}`, or the reserved name `coordinator`.
        public static let invalidSiteName = Code(.invalidSiteName)
        /// The operation would overwrite an existing CA or identity.
        public static let alreadyExists = Code(.alreadyExists)
        /// A file or directory the operation needs is missing.
        public static let notFound = Code(.notFound)
        /// Reading, writing, renaming or locking a file failed.
        public static let io = Code(.io)
        /// A file is not the PEM document it should be.
        public static let invalidPEM = Code(.invalidPEM)
        /// A private key file does not hold a usable P-256 key.
        public static let invalidKey = Code(.invalidKey)
        /// A certificate cannot be built, or is not the kind of certificate expected.
        public static let invalidCertificate = Code(.invalidCertificate)
        /// `revoked.json`, `revoked.signed` or `issued.json` cannot be parsed.
        public static let invalidRevocationList = Code(.invalidRevocationList)
        /// The peer's certificate does not chain to the federation CA.
        public static let untrustedIssuer = Code(.untrustedIssuer)
        /// The peer's certificate (or the CA's) has expired.
        public static let expired = Code(.expired)
        /// The peer's certificate is not valid yet.
        public static let notYetValid = Code(.notYetValid)
        /// The peer's certificate is not allowed for TLS client authentication.
        public static let missingClientAuth = Code(.missingClientAuth)
        /// The peer's certificate names no site, or more than one.
        public static let invalidIdentity = Code(.invalidIdentity)
        /// The peer's certificate serial is on the federation's revocation list.
        public static let revoked = Code(.revoked)
        /// Chain validation failed for a reason other than the ones above.
        public static let policyFailure = Code(.policyFailure)
        /// `revoke(site:)` found no certificate issued to that site.
        public static let unknownSite = Code(.unknownSite)
        /// A serial number is not hexadecimal.
        public static let invalidSerial = Code(.invalidSerial)
        /// A private key file is readable by other users.
        public static let insecurePermissions = Code(.insecurePermissions)
        /// A certificate is meant for another use: a TLS certificate presented as a signing
        /// certificate, or a signing certificate presented for TLS.
        public static let wrongPurpose = Code(.wrongPurpose)
        /// A signing certificate or key is not Ed25519.
        public static let wrongKeyType = Code(.wrongKeyType)
        /// A certificate presented as the coordinator's belongs to a site (or to no coordinator).
        public static let wrongRole = Code(.wrongRole)
        /// The coordinator's certificate does not name the host the site dialled.
        public static let hostMismatch = Code(.hostMismatch)
        /// A signed revocation list's signature does not verify with the federation CA's key.
        public static let invalidSignature = Code(.invalidSignature)
        /// An input is over its size bound and was refused before parsing.
        public static let tooLarge = Code(.tooLarge)
        /// A folder meant to travel (the coordinator's trust folder) holds the CA's private key.
        public static let exposedCAKey = Code(.exposedCAKey)
    }

    /// What went wrong.
    public var code: Code
    /// A sentence for the operator, naming the file or site.
    public var message: String
    /// The underlying error's description, when it is safe to keep (never for key parsing).
    public var cause: String?

    public init(code: Code, message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    init(_ code: Code, _ message: String, cause: (any Error)? = nil) {
        self.init(code: code, message: message, cause: cause.map { String(describing: $0) })
    }
}

extension PKIError: CustomStringConvertible {
    public var description: String {
        if let cause {
            return "\(code): \(message) (\(cause))"
        }
        return "\(code): \(message)"
    }
}

extension PKIError: CustomDebugStringConvertible {
    public var debugDescription: String { "PKIError(\(description))" }
}
