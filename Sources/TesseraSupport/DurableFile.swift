public import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `write(2)`, out of reach of ``DurableFile/write(_:to:permissions:)``'s name.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, bytes, count)
}

/// Replaces a file atomically and durably: a reader, or the file system after a crash or a
/// power loss, sees either the previous complete file or the new complete one, never a torn
/// one, and the new file has survived to disk once ``write(_:to:permissions:)`` returns.
///
/// The bytes go to a fresh temporary file in the destination's directory (a rename is atomic
/// only within one file system), created with `O_CREAT | O_EXCL` under a random name so no
/// other file is ever reused or clobbered. It is `fsync`ed, renamed over the destination, and
/// the directory is `fsync`ed so that the rename itself is durable. On any failure the
/// temporary file is removed and the destination is left as it was. Foundation's `.atomic`
/// option is not used because it syncs neither the file nor the directory.
public enum DurableFile {
    /// Writes `bytes` to `url`, replacing any file already there.
    ///
    /// - Parameter permissions: `nil` gives the new file mode 0644 less the process umask, as for
    ///   any new file. A value gives exactly those bits, set on the temporary file before its
    ///   first byte is written, so a private key written with 0600 is never readable by others.
    /// - Throws: ``DurableFileError`` naming the file, the step that failed and the system error.
    public static func write(
        _ bytes: some ContiguousBytes, to url: URL, permissions: mode_t? = nil
    ) throws(DurableFileError) {
        guard url.isFileURL else {
            throw DurableFileError(
                .createTemporary, path: url.absoluteString, errno: EINVAL, "cannot write '\(url)': not a file URL")
        }
        let destination = url.path(percentEncoded: false)
        let directory = url.deletingLastPathComponent().path(percentEncoded: false)
        let (fd, temporary) = try createTemporary(besides: url, destination: destination)

        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        do throws(DurableFileError) {
            if let permissions {
                // O_CREAT's mode passes through the umask; fchmod sets the exact bits.
                guard fchmod(fd, permissions) == 0 else {
                    throw failure(
                        .setPermissions, destination,
                        "cannot set mode \(String(permissions, radix: 8)) on '\(temporary)' to write '\(destination)'")
                }
            }
            try writeAll(bytes, to: fd, temporary: temporary, destination: destination)
            try retryingOnInterrupt(.sync, destination, "cannot fsync '\(temporary)' to write '\(destination)'") {
                fsync(fd)
            }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else {
            throw failure(.close, destination, "cannot close '\(temporary)' to write '\(destination)'")
        }
        guard rename(temporary, destination) == 0 else {
            throw failure(.rename, destination, "cannot rename '\(temporary)' to '\(destination)'")
        }
        renamed = true
        try syncDirectory(directory, destination: destination)
    }

    /// Writes `bytes` durably into `directory` under the name `name(bytes)` (a content address)
    /// and returns that name.
    ///
    /// The same guarantees as ``write(_:to:permissions:)``, but the name is computed while the
    /// file is written and flushed: hashing a large blob and `fsync`ing it take comparable time,
    /// and neither needs the other until the rename. A file already under that name holds the
    /// same bytes, so replacing it is harmless.
    public static func writeContentAddressed(
        _ contents: FileContents, in directory: URL, name: @escaping @Sendable (FileContents) -> String
    ) throws(DurableFileError) -> String {
        let placeholder = directory.appending(path: "blob")
        let directoryPath = directory.path(percentEncoded: false)
        let (fd, temporary) = try createTemporary(besides: placeholder, destination: directoryPath)
        var renamed = false
        defer { if !renamed { unlink(temporary) } }
        // The name is hashed in a thread of its own while this one writes and flushes, which
        // takes longer. Not a Dispatch queue: Dispatch sizes its pool by the cores and cannot
        // see that a flush only waits, so on a busy machine it ran the two one after the other.
        let computed = Mutex<String?>(nil)
        let hashed = DispatchSemaphore(value: 0)
        let hasher = Thread {
            let value = name(contents)
            computed.withLock { $0 = value }
            hashed.signal()
        }
        hasher.start()
        do throws(DurableFileError) {
            defer { hashed.wait() }
            try contents.forEachBuffer { (buffer) throws(DurableFileError) in
                try writeAll(buffer, to: fd, temporary: temporary, destination: directoryPath)
            }
            try retryingOnInterrupt(.sync, directoryPath, "cannot fsync '\(temporary)'") { fsync(fd) }
        } catch {
            close(fd)
            throw error
        }
        guard close(fd) == 0 else {
            throw failure(.close, directoryPath, "cannot close '\(temporary)'")
        }
        let fileName = computed.withLock { $0 } ?? ""
        let destination = directory.appending(path: fileName).path(percentEncoded: false)
        guard rename(temporary, destination) == 0 else {
            throw failure(.rename, destination, "cannot rename '\(temporary)' to '\(destination)'")
        }
        renamed = true
        try syncDirectory(directoryPath, destination: destination)
        return fileName
    }

    /// Opens a new, empty temporary file in `url`'s directory, named after the destination and a
    /// random suffix, and returns its descriptor and path.
    private static func createTemporary(
        besides url: URL, destination: String
    ) throws(DurableFileError) -> (fd: Int32, path: String) {
        // Keep the name within NAME_MAX whatever the destination's name is.
        let stem = String(decoding: url.lastPathComponent.utf8.prefix(200), as: UTF8.self)
        // A name taken by another writer is skipped (O_EXCL), never reused; a few random tries
        // make a collision vanishingly unlikely rather than a loop that could spin.
        for _ in 0..<8 {
            let suffix = UInt64.random(in: .min ... .max)
            let name = ".\(stem).tmp-\(Hex.encode(withUnsafeBytes(of: suffix) { Array($0) }))"
            let path = url.deletingLastPathComponent().appending(path: name).path(percentEncoded: false)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            if fd >= 0 { return (fd, path) }
            if errno == EEXIST || errno == EINTR { continue }
            throw failure(
                .createTemporary, destination, "cannot create a temporary file '\(path)' to write '\(destination)'")
        }
        throw DurableFileError(
            .createTemporary, path: destination, errno: EEXIST,
            "cannot create a temporary file to write '\(destination)': every name tried was taken")
    }

    /// Writes every byte, resuming after short writes and interrupted calls.
    private static func writeAll(
        _ bytes: some ContiguousBytes, to fd: Int32, temporary: String, destination: String
    ) throws(DurableFileError) {
        let outcome: DurableFileError? = bytes.withUnsafeBytes { buffer in
            var written = 0
            while written < buffer.count {
                let result = systemWrite(fd, buffer.baseAddress! + written, buffer.count - written)
                if result > 0 {
                    written += result
                } else if result < 0 && errno == EINTR {
                    continue
                } else {
                    // A zero-byte write of a non-empty buffer makes no progress: treat it as EIO.
                    let code = result < 0 ? errno : EIO
                    return DurableFileError(
                        .write, path: destination, errno: code,
                        "cannot write '\(temporary)' to write '\(destination)' (\(written) of \(buffer.count) bytes written)"
                    )
                }
            }
            return nil
        }
        if let outcome { throw outcome }
    }

    /// `fsync`s the directory so the rename survives a crash. EINVAL means the file system cannot
    /// sync a directory, which leaves nothing more to do.
    private static func syncDirectory(_ directory: String, destination: String) throws(DurableFileError) {
        let path = directory.isEmpty ? "." : directory
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw failure(
                .syncDirectory, destination,
                "cannot open directory '\(path)' to fsync it after writing '\(destination)'")
        }
        defer { close(fd) }
        while fsync(fd) != 0 {
            if errno == EINTR { continue }
            if errno == EINVAL { return }
            throw failure(
                .syncDirectory, destination, "cannot fsync directory '\(path)' after writing '\(destination)'")
        }
    }

    private static func retryingOnInterrupt(
        _ code: DurableFileError.Code, _ destination: String, _ what: String, _ call: () -> Int32
    ) throws(DurableFileError) {
        while call() != 0 {
            if errno == EINTR { continue }
            throw failure(code, destination, what)
        }
    }

    /// An error carrying the current `errno`.
    private static func failure(
        _ code: DurableFileError.Code, _ destination: String, _ what: String
    ) -> DurableFileError {
        DurableFileError(code, path: destination, errno: errno, what)
    }
}

/// A durable write failed. The destination is untouched unless the step is
/// ``Code-swift.struct/syncDirectory``, where the new file is in place but its rename may not
/// survive a crash.
public struct DurableFileError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The step that failed.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Step: String, Hashable, Sendable {
            case createTemporary, setPermissions, write, sync, close, rename, syncDirectory
        }

        private let step: Step
        private init(_ step: Step) { self.step = step }

        public var description: String { step.rawValue }

        /// The temporary file could not be created (missing directory, no permission, …).
        public static let createTemporary = Code(.createTemporary)
        /// The requested permission bits could not be set.
        public static let setPermissions = Code(.setPermissions)
        /// Writing the bytes failed (a full disk, a quota, an I/O error).
        public static let write = Code(.write)
        /// Flushing the file to disk failed.
        public static let sync = Code(.sync)
        /// Closing the file reported an error.
        public static let close = Code(.close)
        /// The finished file could not be renamed over the destination.
        public static let rename = Code(.rename)
        /// The file is in place but its directory could not be flushed.
        public static let syncDirectory = Code(.syncDirectory)
    }

    /// The step that failed.
    public var code: Code
    /// The file that was being written.
    public var path: String
    /// The system error number.
    public var errno: Int32
    /// A sentence naming the destination, and the temporary file where there is one.
    public var message: String

    public init(_ code: Code, path: String, errno: Int32, _ message: String) {
        self.code = code
        self.path = path
        self.errno = errno
        self.message = message
    }

    public var description: String {
        "\(message): \(String(cString: strerror(errno))) (errno \(errno))"
    }
}
