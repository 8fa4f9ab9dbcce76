import Foundation
import TesseraSupport
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite struct DurableFileTests {
    /// A fresh empty directory, removed by the caller.
    static func scratchDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appending(path: "tessera-durable-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func entries(of directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path(percentEncoded: false)).sorted()
    }

    static func mode(of url: URL) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: url.path(percentEncoded: false))
        return (attributes[.posixPermissions] as! NSNumber).intValue & 0o7777
    }

    @Test func contentLandsAndNothingElseIsLeftInTheDirectory() throws {
        let dir = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appending(path: "model.bin")
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try DurableFile.write(bytes, to: target)
        #expect(try [UInt8](Data(contentsOf: target)) == bytes)
        #expect(try Self.entries(of: dir) == ["model.bin"])
    }

    @Test func anEmptyFileIsWritten() throws {
        let dir = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appending(path: "empty")
        try DurableFile.write([UInt8](), to: target)
        #expect(try Data(contentsOf: target).isEmpty)
    }

    /// Replacement goes through a new file renamed into place: a reader that opened the old file
    /// keeps reading the complete old bytes, and the path gives the complete new ones. Writing in
    /// place would show that reader a truncated or mixed file.
    @Test func anExistingFileIsReplacedWholeNotRewrittenInPlace() throws {
        let dir = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appending(path: "state.json")
        let old = Array(String(repeating: "old contents\n", count: 1000).utf8)
        let new = Array("new\n".utf8)
        try DurableFile.write(old, to: target)
        let reader = try FileHandle(forReadingFrom: target)
        defer { try? reader.close() }

        try DurableFile.write(new, to: target)
        #expect(try [UInt8](Data(contentsOf: target)) == new)
        #expect(try [UInt8](reader.readToEnd() ?? Data()) == old)
        #expect(try Self.entries(of: dir) == ["state.json"])
    }

    @Test(arguments: [0o600, 0o640, 0o644, 0o400])
    func requestedPermissionsAreAppliedExactly(_ mode: Int) throws {
        let dir = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appending(path: "key.pem")
        try DurableFile.write(Array("secret".utf8), to: target, permissions: mode_t(mode))
        #expect(try Self.mode(of: target) == mode)
        // Replacing a file gives the new file the requested mode, not the old one's.
        try DurableFile.write(Array("again".utf8), to: target, permissions: 0o600)
        #expect(try Self.mode(of: target) == 0o600)
    }

    @Test func aMissingDirectoryFailsAtCreationAndNamesTheFile() throws {
        let dir = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appending(path: "missing/out.csv")
        let error = try #require(throws: DurableFileError.self) { try DurableFile.write([1, 2, 3], to: target) }
        #expect(error.code == .createTemporary)
        #expect(error.errno == ENOENT)
        #expect(error.path == target.path(percentEncoded: false))
        #expect(error.description.contains(target.path(percentEncoded: false)))
        #expect(try Self.entries(of: dir).isEmpty)
    }

    @Test func aParentThatIsARegularFileFails() throws {
        let dir = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let parent = dir.appending(path: "plain-file")
        try DurableFile.write(Array("keep me".utf8), to: parent)
        let error = try #require(throws: DurableFileError.self) {
            try DurableFile.write([1, 2, 3], to: parent.appending(path: "child"))
        }
        #expect(error.code == .createTemporary)
        #expect(error.errno == ENOTDIR)
        #expect(try String(contentsOf: parent, encoding: .utf8) == "keep me")
        #expect(try Self.entries(of: dir) == ["plain-file"])
    }

    /// A failure after the bytes were written and synced (here the rename, because a non-empty
    /// directory stands at the destination) removes the temporary file and leaves what was at the
    /// destination and beside it untouched.
    @Test func aFailedRenameRemovesTheTemporaryFileAndLeavesEverythingElse() throws {
        let dir = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sibling = dir.appending(path: "results.json")
        try DurableFile.write(Array("{\"complete\": true}".utf8), to: sibling)
        let blocked = dir.appending(path: "report.html")
        try FileManager.default.createDirectory(at: blocked, withIntermediateDirectories: false)
        try DurableFile.write(Array("inside".utf8), to: blocked.appending(path: "keep.txt"))

        let error = try #require(throws: DurableFileError.self) {
            try DurableFile.write(Array(repeating: 7, count: 10_000), to: blocked)
        }
        #expect(error.code == .rename)
        #expect(error.path == blocked.path(percentEncoded: false))
        #expect(try Self.entries(of: dir) == ["report.html", "results.json"])
        #expect(try Self.entries(of: blocked) == ["keep.txt"])
        #expect(try String(contentsOf: sibling, encoding: .utf8) == "{\"complete\": true}")
    }

    @Test func aVeryLongFileNameStillGetsATemporarySibling() throws {
        let dir = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let target = dir.appending(path: String(repeating: "n", count: 250))
        try DurableFile.write([42], to: target)
        #expect(try [UInt8](Data(contentsOf: target)) == [42])
        #expect(try Self.entries(of: dir) == [target.lastPathComponent])
    }

    @Test func aNonFileURLIsRefused() throws {
        let error = try #require(throws: DurableFileError.self) {
            try DurableFile.write([1], to: URL(string: "https://example.com/model.bin")!)
        }
        #expect(error.code == .createTemporary)
    }
}
