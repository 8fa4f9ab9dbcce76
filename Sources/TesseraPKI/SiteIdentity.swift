import TesseraSupport
public import X509

/// The rules for a site's name, the identity a coordinator records rounds and audit entries
/// under.
///
/// Names are restricted to `[A-Za-z0-9._-]`, 1 to 64 characters, because the same string is
/// used in a URI (`tessera://site/<name>`), in file paths an operator chooses, and in log
/// lines: no character of it needs escaping anywhere. `coordinator` (in any case) is reserved
/// so that a site's certificate can never be mistaken for the coordinator's, and `.` and `..`
/// are refused because they are path components, not names.
public enum SiteName {
    /// The name reserved for the coordinator's own certificate.
    public static let reserved = "coordinator"
    /// The longest name accepted.
    public static let maximumLength = 64

    /// Throws ``PKIError/Code-swift.struct/invalidSiteName`` unless `name` is a valid site name.
    public static func validate(_ name: String) throws {
        try validate(name, as: "site name")
    }

    /// The same rules for any peer's name (researchers and operators too); `what` names it in
    /// the error.
    static func validate(_ name: String, as what: String) throws {
        guard !name.isEmpty, name.utf8.count <= maximumLength else {
            throw PKIError(
                .invalidSiteName,
                "\(what) \(quoted(name)) must be 1 to \(maximumLength) characters of [A-Za-z0-9._-]")
        }
        let allowed = name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
        guard allowed else {
            throw PKIError(
                .invalidSiteName,
                "\(what) \(quoted(name)) may only contain letters, digits, '.', '_' and '-'")
        }
        guard name != ".", name != ".." else {
            throw PKIError(.invalidSiteName, "\(what) \(quoted(name)) is a path component, not a name")
        }
        guard name.lowercased() != reserved else {
            throw PKIError(.invalidSiteName, "\(what) \(quoted(name)) is reserved for the coordinator's certificate")
        }
    }

    /// Quotes a user-supplied name for a message, escaping control characters so a hostile
    /// name cannot forge log lines.
    static func quoted(_ name: String) -> String {
        let shown = name.count > 80 ? String(name.prefix(80)) + "…" : name
        return "\"" + shown.unicodeScalars.map { $0.escaped(asASCII: true) }.joined() + "\""
    }
}

/// Reads the site identity out of a certificate.
///
/// The design rule is that a site's identity is what its certificate says, never a field in a
/// message. The authoritative place is a single SAN URI `tessera://site/<name>`, which
/// `FederationCA.issue` always writes. The subject common name is only a fallback for
/// certificates that carry no Tessera URI at all (for example, one an operator made by hand
/// with `openssl` and signed with the federation key); when both are present they must agree,
/// so a certificate cannot show one name to a human reading its subject and another to the
/// coordinator.
public enum SiteIdentity {
    /// The URI prefix of a site identity in a certificate's subject alternative names.
    public static let uriPrefix = "tessera://site/"

    /// The SAN URI that names `site`.
    public static func uri(for site: String) -> String { uriPrefix + site }

    /// The site name a certificate identifies.
    ///
    /// Throws ``PKIError/Code-swift.struct/invalidIdentity`` when the certificate carries more
    /// than one Tessera URI, a malformed one, a name that fails ``SiteName/validate(_:)``, a
    /// URI and common name that disagree, or no usable identity at all, and
    /// ``PKIError/Code-swift.struct/wrongRole`` for a researcher's or operator's certificate
    /// (``PeerRole``), which never names a site, whatever its common name.
    public static func siteName(of certificate: Certificate) throws -> String {
        let subject = "certificate with serial \(SerialNumberHex.string(certificate.serialNumber))"
        try RoleURIs.refuseNonSiteRoles(of: certificate, subject: subject)
        let sans: SubjectAlternativeNames?
        do {
            sans = try certificate.extensions.subjectAlternativeNames
        } catch {
            throw PKIError(.invalidIdentity, "\(subject) has a malformed subjectAltName extension", cause: error)
        }
        let tesseraURIs = (sans ?? SubjectAlternativeNames()).compactMap { name -> String? in
            guard case .uniformResourceIdentifier(let uri) = name else { return nil }
            // Scheme and host are case-insensitive in URIs; compare them that way so a
            // differently-cased duplicate cannot slip past the "exactly one" rule.
            return uri.lowercased().hasPrefix(uriPrefix) ? uri : nil
        }
        let commonNames = certificate.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
            .map { String($0.value) ?? String(describing: $0.value) }

        guard tesseraURIs.count <= 1 else {
            throw PKIError(
                .invalidIdentity,
                "\(subject) names \(tesseraURIs.count) sites (\(tesseraURIs.map(SiteName.quoted).joined(separator: ", "))); exactly one \(uriPrefix)<name> URI is allowed"
            )
        }
        if let uri = tesseraURIs.first {
            let name = String(uri.dropFirst(uriPrefix.count))
            do {
                try SiteName.validate(name)
            } catch let error as PKIError {
                throw PKIError(.invalidIdentity, "\(subject) has site URI \(SiteName.quoted(uri)): \(error.message)")
            }
            if let commonName = commonNames.first, commonNames.count != 1 || commonName != name {
                throw PKIError(
                    .invalidIdentity,
                    "\(subject) has site URI \(SiteName.quoted(uri)) but common name \(commonNames.map(SiteName.quoted).joined(separator: ", ")); they must agree"
                )
            }
            return name
        }
        guard commonNames.count == 1, let commonName = commonNames.first else {
            throw PKIError(
                .invalidIdentity,
                "\(subject) names no site: it has no \(uriPrefix)<name> URI and \(commonNames.count) common names")
        }
        do {
            try SiteName.validate(commonName)
        } catch let error as PKIError {
            throw PKIError(
                .invalidIdentity, "\(subject) has no site URI and its common name is not a site name: \(error.message)")
        }
        return commonName
    }
}

/// The text form of serial numbers used in `revoked.json`, `issued.json` and messages.
///
/// Canonical form: lower-case hexadecimal of the serial's integer value, no separators, no
/// leading zeros. Operators paste serials from many tools (`openssl x509 -serial` prints
/// upper case, some tools add colons or a leading `00`), and all of those spellings must
/// revoke the same certificate, so every comparison goes through ``canonical(_:)``.
public enum SerialNumberHex {
    /// The canonical hex of a certificate serial number.
    public static func string(_ serial: Certificate.SerialNumber) -> String {
        strip(Hex.encode(serial.bytes))
    }

    /// The canonical hex of `certificate`'s serial number.
    public static func string(of certificate: Certificate) -> String {
        string(certificate.serialNumber)
    }

    /// Canonicalises a serial typed by a person: accepts upper or lower case, `:` or space
    /// separators and a `0x` prefix.
    public static func canonical(_ text: String) throws -> String {
        var hex = text.trimmingCharactersInWhitespace().lowercased()
        if hex.hasPrefix("0x") { hex.removeFirst(2) }
        hex.removeAll { $0 == ":" || $0 == " " }
        guard !hex.isEmpty, hex.utf8.count <= 64, hex.utf8.allSatisfy({ Hex.digitValue($0) != nil }) else {
            throw PKIError(.invalidSerial, "serial \(SiteName.quoted(text)) is not a hexadecimal number")
        }
        return strip(hex)
    }

    private static func strip(_ hex: String) -> String {
        let trimmed = hex.drop { $0 == "0" }
        return trimmed.isEmpty ? "0" : String(trimmed)
    }
}

extension String {
    fileprivate func trimmingCharactersInWhitespace() -> String {
        String(self.drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
