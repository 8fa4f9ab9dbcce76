import Crypto
public import Foundation
import SwiftASN1
import TesseraSupport
public import X509

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading and writing the PEM files of a CA or identity directory.
///
/// Every write replaces its file atomically and durably, so a reader (a coordinator re-reading
/// `revoked.json` on each connection, or a site starting up) sees either the old file or the new
/// one, never half of one. Key files have mode 0600 from their first byte, so there is no window
/// where a key is readable by other users.
public enum PEMFile {
    /// Loads the first certificate of a PEM file.
    public static func loadCertificate(from url: URL) throws -> Certificate {
        let certificates = try loadCertificates(from: url)
        return certificates[0]
    }

    /// Loads every certificate of a PEM bundle, in file order; throws if there is none.
    public static func loadCertificates(from url: URL) throws -> [Certificate] {
        let text = try readText(url)
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: text)
        } catch {
            throw PKIError(.invalidPEM, "\(url.path) is not a PEM file", cause: error)
        }
        let certificateDocuments = documents.filter { $0.discriminator == Certificate.defaultPEMDiscriminator }
        guard !certificateDocuments.isEmpty else {
            throw PKIError(.invalidPEM, "\(url.path) holds no CERTIFICATE block")
        }
        return try certificateDocuments.map { document in
            do {
                return try Certificate(pemDocument: document)
            } catch {
                throw PKIError(
                    .invalidCertificate, "\(url.path) holds a CERTIFICATE block that does not parse", cause: error)
            }
        }
    }

    /// Loads a P-256 private key from a PKCS#8 (or SEC1) PEM file.
    ///
    /// - Parameter requireOwnerOnly: when true (the default), a key file that group or others
    ///   can read is refused, as `ssh` does: a key that has leaked to other local users no longer
    ///   proves a site's identity, and refusing makes the operator notice.
    /// - Note: parse failures keep no underlying error, so no key byte can reach a log.
    public static func loadPrivateKey(from url: URL, requireOwnerOnly: Bool = true) throws -> Certificate.PrivateKey {
        if requireOwnerOnly {
            let mode = try fileMode(url)
            if mode & 0o077 != 0 {
                throw PKIError(
                    .insecurePermissions,
                    "\(url.path) has mode \(String(mode, radix: 8)); private keys must be readable by their owner only (chmod 600)"
                )
            }
        }
        let text = try readText(url)
        let document: PEMDocument
        do {
            document = try PEMDocument(pemString: text)
        } catch {
            throw PKIError(.invalidPEM, "\(url.path) is not a PEM private key")
        }
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemDocument: document)
        } catch {
            throw PKIError(.invalidKey, "\(url.path) does not hold a PKCS#8 or SEC1 private key")
        }
        guard P256.Signing.PublicKey(key.publicKey) != nil else {
            throw PKIError(
                .invalidKey,
                "\(url.path) holds a key that is not ECDSA P-256; Tessera issues and accepts P-256 keys only")
        }
        return key
    }

    /// Loads an Ed25519 private key from a PKCS#8 PEM file (RFC 8410), refusing it if group
    /// or others can read it. Errors keep no underlying cause, so no key byte reaches a log.
    static func loadSigningKey(from url: URL) throws -> Curve25519.Signing.PrivateKey {
        let mode = try fileMode(url)
        if mode & 0o077 != 0 {
            throw PKIError(
                .insecurePermissions,
                "\(url.path) has mode \(String(mode, radix: 8)); private keys must be readable by their owner only (chmod 600)"
            )
        }
        let document: PEMDocument
        do {
            document = try PEMDocument(pemString: try readText(url))
        } catch let error as PKIError {
            throw error
        } catch {
            throw PKIError(.invalidPEM, "\(url.path) is not a PEM private key")
        }
        guard document.discriminator == "PRIVATE KEY" else {
            throw PKIError(.invalidPEM, "\(url.path) is not a PKCS#8 PEM private key (a PRIVATE KEY block)")
        }
        switch Ed25519PKCS8.seed(derEncoded: document.derBytes) {
        case .some(let seed):
            guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: seed) else {
                throw PKIError(.invalidKey, "\(url.path) does not hold a usable Ed25519 private key")
            }
            return key
        case .none:
            let isOtherKey = (try? Certificate.PrivateKey(pemDocument: document)) != nil
            throw PKIError(
                isOtherKey ? .wrongKeyType : .invalidKey,
                isOtherKey
                    ? "\(url.path) holds a key that is not Ed25519; signing keys are Ed25519"
                    : "\(url.path) does not hold a PKCS#8 private key")
        }
    }

    /// The PKCS#8 PEM text of an Ed25519 private key.
    static func pem(of key: Curve25519.Signing.PrivateKey) throws -> String {
        do {
            return try Certificate.PrivateKey(key).serializeAsPEM().pemString + "\n"
        } catch {
            throw PKIError(.invalidKey, "cannot encode an Ed25519 private key as PEM")
        }
    }

    /// The PEM text of a certificate.
    public static func pem(of certificate: Certificate) throws -> String {
        do {
            return try certificate.serializeAsPEM().pemString + "\n"
        } catch {
            throw PKIError(.invalidCertificate, "cannot encode certificate \(certificate.subject) as PEM", cause: error)
        }
    }

    /// Writes `contents` to `url` atomically and durably with exactly the given permission bits
    /// (through `TesseraSupport`'s `DurableFile`, which sets them before the first byte).
    /// - Parameter overwrite: when false, an existing file at `url` is an error.
    public static func writeAtomically(
        _ contents: String, to url: URL, mode: mode_t = 0o644, overwrite: Bool = true
    ) throws {
        if !overwrite, FileManager.default.fileExists(atPath: url.path) {
            throw PKIError(.alreadyExists, "\(url.path) already exists; refusing to overwrite it")
        }
        do {
            try DurableFile.write(Array(contents.utf8), to: url, permissions: mode)
        } catch {
            throw PKIError(.io, error.description)
        }
    }

    /// The permission bits of a file; of the file a symbolic link points to (a Kubernetes
    /// Secret volume mounts every key as one), since those are what protect the contents.
    static func fileMode(_ url: URL) throws -> mode_t {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PKIError(.notFound, "\(url.path) does not exist")
        }
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.resolvingSymlinksInPath().path)
            guard let mode = attributes[.posixPermissions] as? NSNumber else {
                throw PKIError(.io, "cannot read the permissions of \(url.path)")
            }
            return mode_t(mode.uint16Value) & 0o7777
        } catch let error as PKIError {
            throw error
        } catch {
            throw PKIError(.io, "cannot read the permissions of \(url.path)", cause: error)
        }
    }

    /// Reads a whole file, refusing it unread when it is larger than `maximumSize`.
    static func readBytes(_ url: URL, maximumSize: Int) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PKIError(.notFound, "\(url.path) does not exist")
        }
        let size: Int
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
            size = (attributes[.size] as? NSNumber)?.intValue ?? 0
        } catch {
            throw PKIError(.io, "cannot read the size of \(url.path)", cause: error)
        }
        guard size <= maximumSize else {
            throw PKIError(.tooLarge, "\(url.path) is \(size) bytes; at most \(maximumSize) are accepted")
        }
        do {
            return Array(try Data(contentsOf: url))
        } catch {
            throw PKIError(.io, "cannot read \(url.path)", cause: error)
        }
    }

    static func readText(_ url: URL) throws -> String {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw PKIError(.notFound, "\(url.path) does not exist")
        }
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw PKIError(.io, "cannot read \(url.path)", cause: error)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PKIError(.invalidPEM, "\(url.path) is not UTF-8 text")
        }
        return text
    }

    /// Creates `url` (and its parents) with mode 0700 if missing; the directory holds keys.
    static func makeDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(
                at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw PKIError(.io, "cannot create directory \(url.path)", cause: error)
        }
    }

    /// Runs `body` holding an exclusive `flock` on `directory`, so two `tessera pki` commands
    /// updating the same CA (say, two revocations) cannot lose each other's entry. The lock
    /// is on the directory itself, so no lock file is added to the documented layout.
    static func withExclusiveLock<T>(on directory: URL, _ body: () throws -> T) throws -> T {
        let fd = open(directory.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw PKIError(.io, "cannot open \(directory.path) to lock it: \(errnoText())")
        }
        defer { _ = close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            if errno == EINTR { continue }
            throw PKIError(.io, "cannot lock \(directory.path): \(errnoText())")
        }
        defer { _ = flock(fd, LOCK_UN) }
        return try body()
    }

    static func errnoText() -> String {
        String(cString: strerror(errno))
    }
}

/// The PKCS#8 encoding of an Ed25519 private key (RFC 8410), read by hand because swift-crypto
/// and swift-certificates parse it but do not hand the 32-byte seed back.
enum Ed25519PKCS8 {
    /// The seed of a PKCS#8 `OneAsymmetricKey` whose algorithm is Ed25519 (OID 1.3.101.112,
    /// parameters absent), or nil for anything else. An optional trailing attributes `[0]` or
    /// public key `[1]` field is allowed, as other tools write them.
    static func seed(derEncoded der: [UInt8]) -> [UInt8]? {
        try? DER.sequence(try DER.parse(der), identifier: .sequence) { nodes -> [UInt8] in
            let version = try Int(derEncoded: &nodes)
            guard version == 0 || version == 1 else {
                throw ASN1Error.invalidASN1Object(reason: "unsupported PKCS#8 version")
            }
            let algorithm = try DER.sequence(of: ASN1ObjectIdentifier.self, identifier: .sequence, nodes: &nodes)
            guard algorithm == [ed25519] else {
                throw ASN1Error.invalidASN1Object(reason: "not an Ed25519 key")
            }
            let wrapped = try ASN1OctetString(derEncoded: &nodes)
            let seed = try ASN1OctetString(derEncoded: Array(wrapped.bytes))
            guard seed.bytes.count == 32 else {
                throw ASN1Error.invalidASN1Object(reason: "Ed25519 seed is not 32 bytes")
            }
            while let node = nodes.next() {
                guard node.identifier.tagClass == .contextSpecific, node.identifier.tagNumber <= 1 else {
                    throw ASN1Error.invalidASN1Object(reason: "unexpected PKCS#8 field")
                }
            }
            return Array(seed.bytes)
        }
    }

    static let ed25519: ASN1ObjectIdentifier = [1, 3, 101, 112]
}
