public import Foundation
public import TesseraTransport

/// The operator's credential for the dashboard's actions (`--dashboard-token-file PATH`): a
/// bearer token read once from a file only its owner can read. Without it the dashboard is
/// read-only.
public struct OperatorToken: Sendable {
    private let secret: [UInt8]

    /// The longest token file accepted.
    static let maximumFileBytes = 4096

    /// A token of the given text (tests); leading and trailing whitespace is not part of it.
    public init(_ text: String) throws(TesseraRuntimeError) {
        guard let secret = Self.secret(of: text) else {
            throw TesseraRuntimeError(.invalidConfiguration, "the operator token is empty")
        }
        self.secret = secret
    }

    private static func secret(of text: String) -> [UInt8]? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : Array(trimmed.utf8)
    }

    /// Reads the token in `file`, refusing a file that is missing, empty, larger than 4 KiB, or
    /// readable or writable by its group or others (a token others can read is no credential).
    public init(file: URL) throws(TesseraRuntimeError) {
        let path = file.path
        let attributes: [FileAttributeKey: Any]
        do {
            // The mode that protects the token is the target's when the file is a symbolic link
            // (a Kubernetes Secret volume mounts every key as one).
            attributes = try FileManager.default.attributesOfItem(atPath: file.resolvingSymlinksInPath().path)
        } catch {
            throw TesseraRuntimeError(
                .invalidConfiguration,
                "cannot read the dashboard token file \(path): it does not exist or is not readable",
                cause: error)
        }
        guard attributes[.type] as? FileAttributeType == .typeRegular else {
            throw TesseraRuntimeError(.invalidConfiguration, "the dashboard token file \(path) is not a regular file")
        }
        let permissions =
            (attributes[.posixPermissions] as? NSNumber)?.intValue ?? (attributes[.posixPermissions] as? Int) ?? 0o777
        guard permissions & 0o077 == 0 else {
            throw TesseraRuntimeError(
                .invalidConfiguration,
                "the dashboard token file \(path) is accessible to its group or others (mode \(String(permissions, radix: 8))); run chmod 600 \(path)"
            )
        }
        let data: Data
        do {
            data = try Data(contentsOf: file)
        } catch {
            throw TesseraRuntimeError(
                .invalidConfiguration, "cannot read the dashboard token file \(path)", cause: error)
        }
        guard data.count <= Self.maximumFileBytes else {
            throw TesseraRuntimeError(
                .invalidConfiguration,
                "the dashboard token file \(path) has \(data.count) bytes; a token has at most \(Self.maximumFileBytes)"
            )
        }
        guard let secret = Self.secret(of: String(decoding: data, as: UTF8.self)) else {
            throw TesseraRuntimeError(
                .invalidConfiguration, "the dashboard token file \(path) is empty; write a long random token into it")
        }
        self.secret = secret
    }

    /// Whether an `Authorization` header value is `Bearer <this token>`. The comparison takes
    /// the same time whatever the offered token holds, so its bytes cannot be guessed one by one.
    func accepts(authorization: String?) -> Bool {
        guard let authorization, authorization.count > 7,
            authorization.prefix(7).lowercased() == "bearer "
        else { return false }
        let offered = Array(authorization.dropFirst(7).trimmingCharacters(in: .whitespaces).utf8)
        return Self.constantTimeEqual(offered, secret)
    }

    /// Compares every byte of `expected` whatever the offered bytes are; only the lengths,
    /// which the offerer knows, change the time taken.
    static func constantTimeEqual(_ offered: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference =
            UInt8(truncatingIfNeeded: offered.count ^ expected.count) | (offered.count == expected.count ? 0 : 1)
        for index in expected.indices {
            difference |= expected[index] ^ (index < offered.count ? offered[index] : 0)
        }
        return difference == 0
    }
}
