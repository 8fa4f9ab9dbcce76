import ArgumentParser
import Foundation
import TesseraPKI

/// `tessera pki …`: the federation's certificate authority.
///
/// Sites prove who they are with certificates from the federation's own CA (see DESIGN.md,
/// "Wire protocol"). These commands create that CA, issue site and coordinator identities,
/// and revoke them. They print what they wrote and where, never key material: their output
/// ends up in terminals, tickets and CI logs.
struct PKI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract:
            "Create the federation CA, issue site, coordinator, researcher and operator certificates, revoke them.",
        subcommands: [Init.self, Issue.self, Revoke.self, List.self, Publish.self])
}

extension PKI {
    /// `tessera pki init --out DIR`.
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Create a new federation CA in DIR/ca-private and its public trust folder in DIR/trust.",
            discussion: """
                DIR/ca-private (mode 0700) holds ca-key.pem, ca.pem, revoked.json, revoked.signed and issued.json: \
                keep it on the operator's machine, off the coordinator (whoever holds ca-key.pem can add sites). \
                DIR/trust holds ca.pem and revoked.signed only: give it to the coordinator (--trust). Every \
                `tessera pki revoke` updates DIR/trust/revoked.signed. Refuses to overwrite an existing CA.
                """
        )

        @Option(
            name: .long, help: "The operator's folder: the CA goes in OUT/ca-private, the trust folder in OUT/trust.")
        var out: String

        @Option(name: .long, help: "Common name of the CA certificate.")
        var name = "Tessera Federation CA"

        @Option(name: .long, help: "Lifetime of the CA certificate, in days.")
        var validityDays = 3650

        func run() throws {
            let folders = OperatorFolders(root: URL(fileURLWithPath: out))
            let ca = try FederationCA.initializeOperatorFolders(
                at: folders.root, name: name, validityDays: validityDays)
            print("Created federation CA \"\(name)\" in \(ca.directory.path) (mode 0700; keep it off the coordinator)")
            print("  \(ca.privateKeyURL.path)  CA private key, mode 0600 (never leaves this folder)")
            print("  \(ca.certificateURL.path)  CA certificate")
            print("  \(ca.revokedURL.path)  revocation list (empty)")
            print("  \(ca.signedRevocationListURL.path)  the same list signed by the CA, sequence 1")
            print("  \(ca.issuedURL.path)  index of issued certificates")
            print("Trust folder \(folders.trustDirectory.path) (give it to the coordinator: --trust)")
            print(
                "  \(folders.trustDirectory.appendingPathComponent(FederationCA.certificateFileName).path)  CA certificate"
            )
            print(
                "  \(folders.trustDirectory.appendingPathComponent(FederationCA.signedRevocationListFileName).path)  signed revocation list, rewritten by every revocation"
            )
            print("  valid until \(PKI.format(ca.validUntil))")
        }
    }

    /// `tessera pki issue --ca DIR (--site NAME [--signing-only] | --coordinator [--host H …] | --researcher NAME |
    /// --operator NAME) --out DIR`.
    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Issue a site's certificates, the coordinator's server certificate, or a researcher's or operator's.",
            discussion: """
                Writes cert.pem, key.pem (mode 0600), ca.pem and revoked.signed into --out; for a site also \
                signing-cert.pem and signing-key.pem (mode 0600), the Ed25519 certificate and key it signs its \
                secure-aggregation keys with. Site certificates name the site as CN and as the URI \
                tessera://site/<name>. --signing-only adds the signing certificate to a site folder issued \
                before signing certificates existed. A researcher certificate (--researcher NAME, URI \
                tessera://researcher/<name>) lets its holder submit, list and cancel its own experiments and read \
                models (tessera submit, tessera experiments); an operator certificate (--operator NAME) also \
                cancels any experiment and changes model stages. Neither can join rounds as a site, and no site \
                certificate can submit.
                """)

        @Option(name: .long, help: "The CA folder (OUT/ca-private of `tessera pki init`, or OUT itself).")
        var ca: String

        @Option(name: .long, help: "Site name: 1 to 64 of [A-Za-z0-9._-]; 'coordinator' is reserved.")
        var site: String?

        @Flag(name: .long, help: "Issue the coordinator's certificate (serverAuth and clientAuth) instead of a site's.")
        var coordinator = false

        @Option(name: .long, help: "Issue a researcher's certificate for this name (rules of site names).")
        var researcher: String?

        @Option(name: .customLong("operator"), help: "Issue an operator's certificate for this name.")
        var operatorName: String?

        @Option(
            name: .long,
            help:
                "A DNS name or IP address sites use to reach the coordinator (repeatable; default localhost and 127.0.0.1)."
        )
        var host: [String] = []

        @Flag(
            name: .long,
            help:
                "Only add signing-cert.pem and signing-key.pem to an existing site folder (refused if they exist)."
        )
        var signingOnly = false

        @Option(name: .long, help: "Directory for the identity files (created with mode 0700).")
        var out: String

        @Option(
            name: [.customLong("days"), .customLong("validity-days")],
            help: "Lifetime of the certificate, in days (default one year).")
        var validityDays = FederationCA.defaultLeafValidityDays

        func validate() throws {
            let roles = [site != nil, coordinator, researcher != nil, operatorName != nil].filter { $0 }.count
            guard roles == 1 else {
                throw ValidationError(
                    "Pass exactly one of --site NAME, --coordinator, --researcher NAME or --operator NAME.")
            }
            if !host.isEmpty && !coordinator {
                throw ValidationError("--host applies to --coordinator certificates only.")
            }
            if signingOnly && site == nil {
                throw ValidationError("--signing-only applies to --site certificates only.")
            }
        }

        func run() throws {
            let authority = try FederationCA.load(from: URL(fileURLWithPath: ca))
            let directory = URL(fileURLWithPath: out)
            let files = IssuedIdentity.Files(directory: directory)
            if let site, signingOnly {
                let signing = try authority.issueSigningCertificate(
                    site: site, to: directory, validityDays: validityDays)
                print("Issued signing certificate for \"\(signing.site)\" (tessera://site/\(signing.site))")
                PKI.printSigning(signing)
                PKI.printFederationFiles(files)
                return
            }
            let issued: IssuedIdentity
            if let site {
                issued = try authority.issue(site: site, to: directory, validityDays: validityDays)
                print("Issued site certificates for \"\(issued.name)\" (tessera://site/\(issued.name))")
            } else if let researcher {
                issued = try authority.issueResearcher(researcher, to: directory, validityDays: validityDays)
                print(
                    "Issued researcher certificate for \"\(issued.name)\" (tessera://researcher/\(issued.name)): it submits, lists and cancels its own experiments and reads models; it cannot join rounds"
                )
            } else if let operatorName {
                issued = try authority.issueOperator(operatorName, to: directory, validityDays: validityDays)
                print(
                    "Issued operator certificate for \"\(issued.name)\" (tessera://operator/\(issued.name)): it manages every experiment and the model stages; it cannot join rounds"
                )
            } else {
                let hosts = host.isEmpty ? ["localhost", "127.0.0.1"] : host
                issued = try authority.issueCoordinator(hosts: hosts, to: directory, validityDays: validityDays)
                print("Issued coordinator certificate for \(hosts.joined(separator: ", "))")
            }
            print("  serial       \(issued.serial)")
            print("  valid until  \(PKI.format(issued.validUntil))")
            print("  \(issued.files.certificate.path)  TLS certificate")
            print("  \(issued.files.privateKey.path)  TLS private key, mode 0600")
            if issued.role == .site {
                PKI.printSigning(try SiteSigningIdentity.load(from: directory))
            }
            PKI.printFederationFiles(files)
        }
    }

    /// `tessera pki revoke --ca DIR (--site NAME | --researcher NAME | --operator NAME | --serial HEX)`.
    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Revoke a site's certificates (TLS and signing), a researcher's or operator's, or one by serial.",
            discussion: """
                Updates revoked.json and re-signs revoked.signed with the next sequence number, in the CA folder and \
                in the trust folder beside it. A coordinator reading that trust folder refuses the certificate from \
                its next connection on and ends its open sessions and model fetches at its next revocation check \
                (every 10 s by default). Sites learn of it from revoked.signed, which the coordinator forwards.
                """)

        @Option(name: .long, help: "The CA folder (OUT/ca-private of `tessera pki init`, or OUT itself).")
        var ca: String

        @Option(name: .long, help: "Revoke every certificate issued to this site.")
        var site: String?

        @Option(name: .long, help: "Revoke every certificate issued to this researcher.")
        var researcher: String?

        @Option(name: .customLong("operator"), help: "Revoke every certificate issued to this operator.")
        var operatorName: String?

        @Option(name: .long, help: "Revoke the certificate with this serial (hex; colons and upper case accepted).")
        var serial: String?

        func validate() throws {
            guard [site, researcher, operatorName, serial].compactMap({ $0 }).count == 1 else {
                throw ValidationError(
                    "Pass exactly one of --site NAME, --researcher NAME, --operator NAME or --serial HEX.")
            }
        }

        func run() throws {
            let authority = try FederationCA.load(from: URL(fileURLWithPath: ca))
            let entries: [RevokedCertificate]
            let named: (role: String, name: String)? =
                site.map { ("site", $0) } ?? researcher.map { ("researcher", $0) }
                ?? operatorName.map { ("operator", $0) }
            if let named {
                switch named.role {
                case "site": entries = try authority.revoke(site: named.name)
                case "researcher": entries = try authority.revoke(researcher: named.name)
                default: entries = try authority.revoke(operator: named.name)
                }
                if entries.isEmpty {
                    print("Every certificate of \(named.role) \"\(named.name)\" was already revoked.")
                    return
                }
            } else if let serial {
                entries = [try authority.revoke(serial: serial)]
            } else {
                return
            }
            for entry in entries {
                print(
                    "Revoked serial \(entry.serial) (\(named?.role ?? "issued to") \(entry.site ?? "unknown")) at \(PKI.format(entry.revokedAt))"
                )
            }
            let signed = try authority.signedRevocationList()
            print("Updated \(authority.revokedURL.path)")
            print(
                "Signed \(authority.signedRevocationListURL.path) (sequence \(signed.sequence), \(signed.serials.count) serials)"
            )
            if let trust = authority.trustDirectory {
                print(
                    "Updated \(trust.appendingPathComponent(FederationCA.signedRevocationListFileName).path): a coordinator reading \(trust.path) ends the site's sessions at its next check; copy the file to a coordinator on another machine."
                )
            } else {
                print(
                    "No trust folder beside \(authority.directory.path): copy revoked.signed to the coordinator's trust folder (`tessera pki publish`)."
                )
            }
        }
    }

    /// `tessera pki list --ca DIR`.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the certificates this CA issued and revoked.")

        @Option(name: .long, help: "The CA folder (OUT/ca-private of `tessera pki init`, or OUT itself).")
        var ca: String

        func run() throws {
            let authority = try FederationCA.load(from: URL(fileURLWithPath: ca))
            let issued = try authority.issuedCertificates()
            let revoked = try authority.revokedCertificates()
            let revokedSerials = Set(revoked.map(\.serial))
            let now = Date()
            print(
                "CA \(authority.name) in \(authority.directory.path), valid until \(PKI.format(authority.validUntil))")
            print("Issued: \(issued.count), revoked: \(revoked.count)")
            for entry in issued {
                let status =
                    revokedSerials.contains(entry.serial) ? "revoked" : entry.notValidAfter < now ? "expired" : "valid"
                let name: String
                switch entry.role {
                case .site: name = entry.site
                case .siteSigning: name = "\(entry.site) (signing)"
                case .coordinator: name = "(coordinator)"
                case .researcher: name = "\(entry.site) (researcher)"
                case .operator: name = "\(entry.site) (operator)"
                }
                print(
                    "  \(status.padding(toLength: 8, withPad: " ", startingAt: 0)) \(name.padding(toLength: 24, withPad: " ", startingAt: 0)) \(entry.serial)  until \(PKI.format(entry.notValidAfter))  \(entry.directory)"
                )
            }
            let issuedSerials = Set(issued.map(\.serial))
            for entry in revoked where !issuedSerials.contains(entry.serial) {
                print(
                    "  revoked  \((entry.site ?? "(not in index)").padding(toLength: 24, withPad: " ", startingAt: 0)) \(entry.serial)  at \(PKI.format(entry.revokedAt))"
                )
            }
        }
    }

    /// `tessera pki publish --ca DIR --out TRUST`.
    struct Publish: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the CA's public trust folder (ca.pem, revoked.signed) for the coordinator.",
            discussion: """
                The coordinator needs ca.pem and revoked.signed only, and refuses to start from a folder that holds \
                ca-key.pem. Publishing to the folder `trust` beside the CA folder makes every later revocation \
                update it; elsewhere (a copy for another machine), publish again after each revocation. A CA made \
                before trust folders existed (tessera pki init --out fed/ca) gets one with --out fed/trust.
                """)

        @Option(name: .long, help: "CA directory (or the operator folder made by `tessera pki init`).")
        var ca: String

        @Option(name: .long, help: "The trust folder to write (created with mode 0755).")
        var out: String

        func run() throws {
            let authority = try FederationCA.load(from: URL(fileURLWithPath: ca))
            let directory = URL(fileURLWithPath: out)
            try authority.publishTrust(to: directory)
            let list = try authority.signedRevocationList()
            print("Wrote trust folder \(directory.path) (give it to the coordinator: --trust)")
            print("  \(directory.appendingPathComponent(FederationCA.certificateFileName).path)  CA certificate")
            print(
                "  \(directory.appendingPathComponent(FederationCA.signedRevocationListFileName).path)  signed revocation list (sequence \(list.sequence))"
            )
            if authority.trustDirectory == nil {
                print("  not beside \(authority.directory.path): publish again after every revocation")
            }
        }
    }

    static func printSigning(_ signing: SiteSigningIdentity) {
        print("  signing serial       \(signing.serial)")
        print("  signing valid until  \(PKI.format(signing.validUntil))")
        print(
            "  \(signing.directory.appendingPathComponent(SiteSigningIdentity.certificateFileName).path)  signing certificate (Ed25519)"
        )
        print(
            "  \(signing.directory.appendingPathComponent(SiteSigningIdentity.privateKeyFileName).path)  signing key, mode 0600"
        )
    }

    static func printFederationFiles(_ files: IssuedIdentity.Files) {
        print("  \(files.caCertificate.path)  federation CA certificate")
        print("  \(files.signedRevocationList.path)  CA-signed revocation list")
    }

    static func format(_ date: Date) -> String {
        ISO8601DateFormatter().string(from: date)
    }
}
