import Foundation
import Testing

/// What a hospital runs carries only what a site needs: `tessera-participant` links no
/// coordinator code. Swift symbol names carry their module's name, length-prefixed
/// (`18TesseraCoordinator`), so the unstripped binary holds it exactly when it links the module.
@Suite struct LinkageTests {
    static let coordinatorModule = Data("18TesseraCoordinator".utf8)

    func symbols(of name: String) throws -> Data {
        let binary = try #require(ProcessSupport.binary(name), "build the executables first (swift build)")
        return try Data(contentsOf: binary)
    }

    @Test func theParticipantBinaryLinksNoCoordinatorCode() throws {
        #expect(try symbols(of: "tessera-participant").range(of: Self.coordinatorModule) == nil)
        // The same search finds the module where it is linked.
        #expect(try symbols(of: "tessera-coordinator").range(of: Self.coordinatorModule) != nil)
    }
}
