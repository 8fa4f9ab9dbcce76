public import Foundation
import Synchronization
import TesseraCrypto
public import TesseraSupport

/// Content-addressed files: `blobs/sha256/<64 hex digits>`, each named by the SHA-256 of its
/// bytes.
///
/// A blob is written durably (a synced temporary file renamed into place, then the folder
/// synced) and only then may a database row name it, so a committed row never points at a
/// missing or torn file. Writing the same bytes twice is a no-op; a blob is never modified.
/// Blobs no row names (left by a crash between the write and the commit) are harmless and
/// removed by ``collectGarbage(keeping:)``.
public struct BlobStore: Sendable {
    /// Writes one blob's file durably into a folder, named by its digest; returns the digest.
    typealias FileWriter = @Sendable (_ contents: FileContents, _ directory: URL) throws(DurableFileError) -> String

    public let directory: URL
    /// ``DurableFile/writeContentAddressed(_:in:name:)`` outside tests, which replace it (through
    /// `@testable import`) to play a read-only folder: tests run as root, whom mode bits do not stop.
    let writeFile: FileWriter

    static let durableWrite: FileWriter = { contents, directory throws(DurableFileError) in
        // The digest is computed while the file is written and flushed: both take about as long.
        try DurableFile.writeContentAddressed(contents, in: directory) { digest(of: $0) }
    }

    /// Opens (creating if needed) `root/blobs/sha256`.
    public init(root: URL) throws(StateError) {
        try self.init(root: root, writeFile: Self.durableWrite)
    }

    init(root: URL, writeFile: @escaping FileWriter) throws(StateError) {
        self.writeFile = writeFile
        directory = root.appendingPathComponent("blobs", isDirectory: true).appendingPathComponent(
            "sha256", isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw StateError(.cannotOpen, "cannot create the blob folder \(directory.path)", cause: error)
        }
    }

    /// The SHA-256 of `bytes` in lowercase hex: a blob's name.
    public static func digest(of bytes: [UInt8]) -> String { Hex.encode(SHA256.hash(bytes)) }

    /// The SHA-256 of `contents`, hashed piece by piece.
    public static func digest(of contents: FileContents) -> String {
        var hasher = SHA256()
        contents.forEachBuffer { hasher.update($0) }
        return Hex.encode(hasher.finalize())
    }

    public func url(of digest: String) -> URL { directory.appendingPathComponent(digest) }

    /// Stores `bytes` durably and returns their digest.
    @discardableResult
    public func put(_ bytes: [UInt8]) throws(StateError) -> String {
        try put(FileContents(bytes))
    }

    /// Stores `contents` durably and returns their digest.
    @discardableResult
    public func put(_ contents: FileContents) throws(StateError) -> String {
        do {
            return try writeFile(contents, directory)
        } catch {
            throw StateError.fromWrite(error, what: "a model blob of \(contents.count) bytes")
        }
    }

    /// The bytes of blob `digest`, checked against it.
    public func get(_ digest: String) throws(StateError) -> [UInt8] {
        guard digest.count == 64, Hex.decode(digest) != nil else {
            throw StateError(.corrupt, "'\(digest)' is not a SHA-256 digest")
        }
        let url = url(of: digest)
        let bytes: [UInt8]
        do {
            bytes = [UInt8](try Data(contentsOf: url))
        } catch {
            throw StateError(.notFound, "the blob \(url.path) cannot be read", cause: error)
        }
        guard Self.digest(of: bytes) == digest else {
            throw StateError(.corrupt, "the blob \(url.path) does not hash to its name: the file was changed or torn")
        }
        return bytes
    }

    /// Removes blobs that no row names, and temporary files a crash left behind.
    /// Returns how many files it removed.
    @discardableResult
    public func collectGarbage(keeping referenced: Set<String>) -> Int {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return 0 }
        var removed = 0
        for name in names where !referenced.contains(name) {
            if (try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))) != nil { removed += 1 }
        }
        return removed
    }
}

/// A result one thread hands to another, once.
final class Handoff<Value: Sendable>: Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let result = Mutex<Result<Value, StateError>?>(nil)

    func finish(_ outcome: Result<Value, StateError>) {
        result.withLock { $0 = outcome }
        done.signal()
    }

    /// Blocks until ``finish(_:)`` was called, and returns its value or throws its error. May
    /// be called more than once.
    func wait() throws(StateError) -> Value {
        if let outcome = result.withLock({ $0 }) { return try outcome.get() }
        done.wait()
        // The signal is consumed once; later calls find the result set.
        return try result.withLock { $0 }!.get()
    }
}

extension StateError {
    /// Maps a failed durable write to what an operator must do about it.
    static func fromWrite(_ error: DurableFileError, what: String) -> StateError {
        switch error.errno {
        // EFBIG: the file-size limit (RLIMIT_FSIZE) or the file system's largest file was reached.
        case ENOSPC, EDQUOT, EFBIG:
            StateError(
                .diskFull, "the disk is full: cannot write \(what); the last committed state is intact", cause: error)
        case EROFS, EACCES, EPERM:
            StateError(
                .readOnly, "the state folder is not writable: cannot write \(what); the last committed state is intact",
                cause: error)
        default:
            StateError(.io, "cannot write \(what)", cause: error)
        }
    }
}
