import TesseraCrypto
import Testing

@testable import TesseraSecAgg

/// The SecAgg+ graph seed committed with the roster and revealed at ShareKeys: a server that
/// changes the permutation once the keys are known is refused.
@Suite("Committed graph seed") struct GraphSeedCommitmentTests {
    let ids = Fixture.roster(8)
    let seed = [UInt8](repeating: 7, count: 32)

    func configuration(seed: [UInt8], commitment: [UInt8]?) throws -> SecAggConfiguration {
        try SecAggConfiguration(
            roundID: 3, participants: ids, graph: .harary(degree: 4, seed: seed), threshold: 4, vectorLength: 4,
            graphSeedCommitment: commitment)
    }

    /// The ShareKeys requests of an honest server after every client advertised its keys.
    func shareKeysRequests(clients: inout [SecAggClient]) throws -> [UInt32: ShareKeysRequest] {
        var server = SecAggServer(configuration: try configuration(seed: seed, commitment: SHA256.hash(seed)))
        for index in clients.indices {
            try server.receive(.advertiseKeys(try clients[index].advertiseKeys()), from: clients[index].id)
        }
        guard case .requests(let requests) = try server.closeStage() else {
            Issue.record("the server did not open ShareKeys")
            return [:]
        }
        var byRecipient: [UInt32: ShareKeysRequest] = [:]
        for case .shareKeysRequest(let request) in requests { byRecipient[request.recipient] = request }
        return byRecipient
    }

    @Test("Clients learn the graph only from the revealed seed, and build the server's graph")
    func honestReveal() throws {
        let clientConfiguration = try configuration(seed: [], commitment: SHA256.hash(seed))
        let serverGraph = try configuration(seed: seed, commitment: nil).graph
        var clients = try ids.map { try SecAggClient(id: $0, configuration: clientConfiguration) }
        let requests = try shareKeysRequests(clients: &clients)
        #expect(requests.count == ids.count)
        for index in clients.indices {
            let request = try #require(requests[clients[index].id])
            #expect(request.graphSeed == seed)
            _ = try clients[index].shareKeys(request)
            #expect(
                clients[index].configuration.graph.neighbours(of: clients[index].id)
                    == serverGraph.neighbours(of: clients[index].id))
        }
    }

    @Test("A seed other than the committed one is refused as an inconsistent request")
    func otherSeedRefused() throws {
        let clientConfiguration = try configuration(seed: [], commitment: SHA256.hash(seed))
        var clients = try ids.map { try SecAggClient(id: $0, configuration: clientConfiguration) }
        var request = try #require(try shareKeysRequests(clients: &clients)[ids[0]])
        request.graphSeed = [UInt8](repeating: 8, count: 32)
        let error = #expect(throws: SecAggError.self) { _ = try clients[0].shareKeys(request) }
        #expect(error?.code == .inconsistentRequest)
        #expect(error?.message.contains("commitment") == true)
        #expect(clients[0].progress == .aborted)
    }

    @Test("A seed revealed where none was committed is refused")
    func uncommittedRevealRefused() throws {
        let plain = try configuration(seed: seed, commitment: nil)
        var client = try SecAggClient(id: ids[0], configuration: plain)
        _ = try client.advertiseKeys()
        let request = ShareKeysRequest(roundID: 3, recipient: ids[0], neighbours: [], graphSeed: seed)
        let error = #expect(throws: SecAggError.self) { _ = try client.shareKeys(request) }
        #expect(error?.code == .inconsistentRequest)
    }

    @Test("A commitment is 32 bytes, for a Harary graph only")
    func commitmentShape() throws {
        #expect(throws: SecAggError.self) { _ = try configuration(seed: seed, commitment: [1, 2, 3]) }
        #expect(throws: SecAggError.self) {
            _ = try SecAggConfiguration(
                roundID: 1, participants: ids, graph: .complete, threshold: 5, vectorLength: 4,
                graphSeedCommitment: SHA256.hash(seed))
        }
    }

    @Test("The revealed seed round-trips in the encoding, and an oversized one is refused unread")
    func encoding() throws {
        let request = SecAggMessage.shareKeysRequest(
            ShareKeysRequest(roundID: 5, recipient: 2, neighbours: [], graphSeed: seed))
        #expect(try SecAggMessage.decode(request.encoded()) == request)
        let oversized = SecAggMessage.shareKeysRequest(
            ShareKeysRequest(roundID: 5, recipient: 2, neighbours: [], graphSeed: [UInt8](repeating: 1, count: 65)))
        let error = #expect(throws: SecAggError.self) { _ = try SecAggMessage.decode(oversized.encoded()) }
        #expect(error?.code == .malformedMessage)
    }
}
