import Foundation
import SwiftASN1
import X509

@testable import TesseraPKI

/// A fresh temporary directory, removed when the test's closure returns.
func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tessera-pki-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url)
}

/// Runs `body` and returns the `PKIError` it throws; fails the caller if it throws nothing or
/// something else.
func pkiError(_ body: () async throws -> Void) async -> PKIError? {
    do {
        try await body()
        return nil
    } catch let error as PKIError {
        return error
    } catch {
        return PKIError(code: .io, message: "unexpected error type: \(error)")
    }
}

func permissions(_ url: URL) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: url.path)
    return (attributes[.posixPermissions] as! NSNumber).intValue & 0o777
}

/// The base64 lines of a PEM file's body: what must never appear in an error message.
func pemBodyLines(_ url: URL) throws -> [String] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
        .filter { !$0.hasPrefix("-----") && !$0.isEmpty }
}

/// The absolute path of `openssl`, or nil when it is not installed.
let opensslPath: String? = {
    let candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
    return candidates.map { "\($0)/openssl" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}()

/// Runs openssl with `arguments`, returning its exit status and combined output.
///
/// The output goes to a file, not a pipe: a pipe's end-of-file waits for every holder of its
/// write end, and a process that another test spawns at the same moment can inherit it and
/// live for minutes, leaving a blocking read (on one of the test pool's few threads) stuck.
func runOpenSSL(_ arguments: [String], in directory: URL) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: opensslPath!)
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let capture = FileManager.default.temporaryDirectory.appendingPathComponent("openssl-\(UUID().uuidString).out")
    _ = FileManager.default.createFile(atPath: capture.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: capture) }
    let file = try FileHandle(forWritingTo: capture)
    process.standardOutput = file
    process.standardError = file
    try process.run()
    process.waitUntilExit()
    try file.close()
    return (process.terminationStatus, (try? String(contentsOf: capture, encoding: .utf8)) ?? "")
}

/// The fixed instant the in-memory CA tests run at, so validity checks never depend on the
/// machine's clock.
let referenceDate = Date(timeIntervalSince1970: 1_900_000_000)

/// A certificate's DER bytes.
func der(_ certificate: Certificate) throws -> [UInt8] {
    var serializer = DER.Serializer()
    try serializer.serialize(certificate)
    return serializer.serializedBytes
}

/// A leaf signed by `ca` with whatever profile a test needs, for the cases `FederationCA`
/// refuses to issue.
func handMadeLeaf(
    signedBy ca: FederationCA,
    publicKey: Certificate.PublicKey,
    commonName: String,
    sans: [GeneralName],
    usages: [ExtendedKeyUsage.Usage],
    isCA: Bool = false,
    notValidBefore: Date = Date() - 60,
    notValidAfter: Date = Date() + 3600
) throws -> Certificate {
    try Certificate(
        version: .v3, serialNumber: FederationCA.randomSerialNumber(), publicKey: publicKey,
        notValidBefore: notValidBefore, notValidAfter: notValidAfter, issuer: ca.certificate.subject,
        subject: try DistinguishedName { CommonName(commonName) }, signatureAlgorithm: .ecdsaWithSHA256,
        extensions: try Certificate.Extensions {
            if isCA {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
            } else {
                Critical(BasicConstraints.notCertificateAuthority)
            }
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage(usages)
            SubjectAlternativeNames(sans)
        },
        issuerPrivateKey: ca.privateKey)
}
