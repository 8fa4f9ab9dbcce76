public import Foundation

/// One entry of a CA directory's `revoked.json`.
///
/// `revoked.json` is a JSON array of these objects, for example
/// `[{"serial": "4f3a…", "site": "hospital-a", "revokedAt": "2026-11-29T06:00:00Z"}]`. The serial
/// is canonical hex (``SerialNumberHex``); the site name is kept so an operator reading the file
/// knows whose access was withdrawn. The coordinator only needs the serials.
public struct RevokedCertificate: Codable, Hashable, Sendable {
    /// Canonical hex serial number.
    public var serial: String
    /// The site the certificate was issued to, or `coordinator`; `nil` when the serial was not in
    /// `issued.json` (a certificate this CA directory has no record of).
    public var site: String?
    /// When it was revoked.
    public var revokedAt: Date

    public init(serial: String, site: String?, revokedAt: Date) {
        self.serial = serial
        self.site = site
        self.revokedAt = revokedAt
    }
}

/// One entry of a CA directory's `issued.json`, the index `revoke(site:)` and `tessera pki list`
/// read. It is an index only: the certificates themselves live in the identity directories.
public struct IssuedCertificate: Codable, Hashable, Sendable {
    /// Whom a certificate was issued to, and for what. Files written before signing
    /// certificates existed hold only `site` and `coordinator`, and still decode.
    public enum Role: String, Codable, Hashable, Sendable {
        /// A site's TLS client certificate (`cert.pem`).
        case site
        /// The coordinator's TLS certificate.
        case coordinator
        /// A site's Ed25519 signing certificate (`signing-cert.pem`).
        case siteSigning = "site-signing"
        /// A researcher's TLS client certificate (``PeerRole/researcher``).
        case researcher
        /// An operator's TLS client certificate (``PeerRole/operator``).
        case `operator`
    }

    /// Canonical hex serial number.
    public var serial: String
    /// The site, researcher or operator name, or `coordinator` (the key is `site` for the files
    /// written before other roles existed).
    public var site: String
    public var role: Role
    public var notValidBefore: Date
    public var notValidAfter: Date
    /// The identity directory the certificate was written to, as given at issue time.
    public var directory: String

    public init(serial: String, site: String, role: Role, notValidBefore: Date, notValidAfter: Date, directory: String)
    {
        self.serial = serial
        self.site = site
        self.role = role
        self.notValidBefore = notValidBefore
        self.notValidAfter = notValidAfter
        self.directory = directory
    }
}

/// Reads a revocation list without needing the CA's private key.
///
/// A coordinator is typically given a copy of (or read access to) `revoked.json` but not
/// `ca-key.pem`; it calls this on each new connection so a revocation takes effect on the
/// next connection without restarting anything.
public enum RevocationList {
    /// The entries of a `revoked.json` file.
    public static func load(from url: URL) throws -> [RevokedCertificate] {
        try JSONRecords.read([RevokedCertificate].self, from: url)
    }

    /// The canonical serials of a `revoked.json` file.
    public static func serials(from url: URL) throws -> Set<String> {
        Set(try load(from: url).map(\.serial))
    }
}

enum JSONRecords {
    static func read<T: Decodable>(_ type: T.Type, from url: URL) throws -> T {
        let text = try PEMFile.readText(url)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do {
            return try decoder.decode(T.self, from: Data(text.utf8))
        } catch {
            throw PKIError(.invalidRevocationList, "\(url.path) is not a valid \(url.lastPathComponent)", cause: error)
        }
    }

    static func write<T: Encodable>(_ value: T, to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data: Data
        do {
            data = try encoder.encode(value)
        } catch {
            throw PKIError(.io, "cannot encode \(url.lastPathComponent)", cause: error)
        }
        try PEMFile.writeAtomically(String(decoding: data, as: UTF8.self) + "\n", to: url, mode: 0o644)
    }
}
