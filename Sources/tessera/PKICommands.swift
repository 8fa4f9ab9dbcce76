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
        abstract: "Create the federation CA, issue site and coordinator certificates, revoke them.",
        subcommands: [Init.self, Issue.self, Revoke.self, List.self])
}

extension PKI {
    /// `tessera pki init --out DIR`.
    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Create a new federation CA (ca.pem, ca-key.pem, revoked.json, revoked.signed, issued.json) in a directory.",
            discussion:
                "Refuses to overwrite an existing CA. Keep the directory off the coordinator: whoever holds ca-key.pem can add sites."
        )

        @Option(name: .long, help: "Directory for the CA files (created with mode 0700).")
        var out: String

        @Option(name: .long, help: "Common name of the CA certificate.")
        var name = "Tessera Federation CA"

        @Option(name: .long, help: "Lifetime of the CA certificate, in days.")
        var validityDays = 3650

        func run() throws {
            let ca = try FederationCA.initialize(at: URL(fileURLWithPath: out), name: name, validityDays: validityDays)
            print("Created federation CA \"\(name)\" in \(ca.directory.path)")
            print("  \(ca.certificateURL.path)  CA certificate (give to every site and to the coordinator)")
            print("  \(ca.privateKeyURL.path)  CA private key, mode 0600 (keep it here, off the coordinator)")
            print("  \(ca.revokedURL.path)  revocation list (empty; the coordinator reads it on each connection)")
            print(
                "  \(ca.signedRevocationListURL.path)  the same list signed by the CA, sequence 1 (forwarded to sites)")
            print("  \(ca.issuedURL.path)  index of issued certificates")
            print("  valid until \(PKI.format(ca.validUntil))")
        }
    }

    /// `tessera pki issue --ca DIR (--site NAME [--signing-only] | --coordinator [--host H …]) --out DIR`.
    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a site's certificates, or the coordinator's server certificate.",
            discussion: """
                Writes cert.pem, key.pem (mode 0600), ca.pem and revoked.signed into --out; for a site also \
                signing-cert.pem and signing-key.pem (mode 0600), the Ed25519 certificate and key it signs its \
                secure-aggregation keys with. Site certificates name the site as CN and as the URI \
                tessera://site/<name>. --signing-only adds the signing certificate to a site folder issued \
                before signing certificates existed.
                """)

        @Option(name: .long, help: "CA directory made by `tessera pki init`.")
        var ca: String

        @Option(name: .long, help: "Site name: 1 to 64 of [A-Za-z0-9._-]; 'coordinator' is reserved.")
        var site: String?

        @Flag(name: .long, help: "Issue the coordinator's certificate (serverAuth and clientAuth) instead of a site's.")
        var coordinator = false

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

        @Option(name: .long, help: "Lifetime of the certificate, in days.")
        var validityDays = 825

        func validate() throws {
            guard (site != nil) != coordinator else {
                throw ValidationError("Pass exactly one of --site NAME or --coordinator.")
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

    /// `tessera pki revoke --ca DIR (--site NAME | --serial HEX)`.
    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a site's certificates (TLS and signing), or one certificate by serial.",
            discussion: """
                Updates revoked.json and re-signs revoked.signed with the next sequence number. The coordinator \
                refuses a revoked certificate from its next connection on; open sessions are not cut. Sites learn \
                of it from revoked.signed, which the coordinator forwards to them.
                """)

        @Option(name: .long, help: "CA directory made by `tessera pki init`.")
        var ca: String

        @Option(name: .long, help: "Revoke every certificate issued to this site.")
        var site: String?

        @Option(name: .long, help: "Revoke the certificate with this serial (hex; colons and upper case accepted).")
        var serial: String?

        func validate() throws {
            guard (site == nil) != (serial == nil) else {
                throw ValidationError("Pass exactly one of --site NAME or --serial HEX.")
            }
        }

        func run() throws {
            let authority = try FederationCA.load(from: URL(fileURLWithPath: ca))
            let entries: [RevokedCertificate]
            if let site {
                entries = try authority.revoke(site: site)
                if entries.isEmpty {
                    print("Every certificate of site \"\(site)\" was already revoked.")
                    return
                }
            } else if let serial {
                entries = [try authority.revoke(serial: serial)]
            } else {
                return
            }
            for entry in entries {
                print(
                    "Revoked serial \(entry.serial) (site \(entry.site ?? "unknown")) at \(PKI.format(entry.revokedAt))"
                )
            }
            let signed = try authority.signedRevocationList()
            print(
                "Updated \(authority.revokedURL.path); copy it to the coordinator if it does not read this directory.")
            print(
                "Signed \(authority.signedRevocationListURL.path) (sequence \(signed.sequence), \(signed.serials.count) serials): give it to the coordinator, which forwards it to the sites."
            )
        }
    }

    /// `tessera pki list --ca DIR`.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the certificates this CA issued and revoked.")

        @Option(name: .long, help: "CA directory made by `tessera pki init`.")
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
