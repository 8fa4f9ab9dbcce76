import TesseraCrypto
import Testing

@testable import TesseraSecAgg

@Suite("SecAgg protocol end to end")
struct ProtocolTests {
    @Test("No dropouts: the server outputs exactly the sum of all inputs", arguments: [false, true])
    func noDropouts(active: Bool) throws {
        let ids = Fixture.roster(7)
        let keys = Fixture.signingKeys(ids, seed: 1)
        let configuration = try SecAggConfiguration(
            roundID: 42, participants: ids, threshold: 4, vectorLength: 33,
            securityMode: active ? Fixture.activeMode(keys) : .semiHonest)
        let inputs = Fixture.randomInputs(ids, length: 33, seed: 2)
        let outcome = SecAggSimulation(configuration: configuration, signingKeys: keys, seed: 3).run(inputs: inputs)
        let result = try outcome.result.get()
        #expect(result.survivors == ids)
        #expect(result.dropped.isEmpty)
        #expect(result.sum == Fixture.wrappingSum(ids.map { inputs[$0]! }, length: 33))
        #expect(outcome.clientErrors.isEmpty)
        #expect(outcome.serverMisbehaviour.isEmpty)
    }

    @Test("Dropouts after ShareKeys: dropped pairwise masks are reconstructed and removed", arguments: [false, true])
    func dropoutsAfterSharing(active: Bool) throws {
        let ids = Fixture.roster(9)
        let keys = Fixture.signingKeys(ids, seed: 4)
        let configuration = try SecAggConfiguration(
            roundID: 7, participants: ids, threshold: 5, vectorLength: 20,
            securityMode: active ? Fixture.activeMode(keys) : .semiHonest)
        let inputs = Fixture.randomInputs(ids, length: 20, seed: 5)
        let dropouts = SecAggSimulation.DropoutSchedule(dropBefore: [
            .shareKeys: [ids[0]], .maskedInputCollection: [ids[3], ids[8]], .unmasking: [ids[5]],
        ])
        let outcome = SecAggSimulation(configuration: configuration, dropouts: dropouts, signingKeys: keys, seed: 6)
            .run(inputs: inputs)
        let result = try outcome.result.get()
        let expectedSurvivors = Fixture.summed(ids, dropouts: dropouts)
        #expect(result.survivors == expectedSurvivors)
        #expect(result.dropped == [ids[3], ids[8]])
        #expect(result.sum == Fixture.wrappingSum(expectedSurvivors.map { inputs[$0]! }, length: 20))
    }

    @Test("SecAgg+ Harary graph round with dropouts")
    func hararyRound() throws {
        let ids = Fixture.roster(25)
        let configuration = try SecAggConfiguration(
            roundID: 9, participants: ids, graph: .harary(degree: 8, seed: [1, 2, 3]), threshold: 4, vectorLength: 16)
        let inputs = Fixture.randomInputs(ids, length: 16, seed: 8)
        let dropouts = SecAggSimulation.DropoutSchedule(dropBefore: [
            .maskedInputCollection: [ids[2], ids[10]], .unmasking: [ids[20]],
        ])
        let outcome = SecAggSimulation(configuration: configuration, dropouts: dropouts, seed: 10).run(inputs: inputs)
        let result = try outcome.result.get()
        let expectedSurvivors = Fixture.summed(ids, dropouts: dropouts)
        #expect(result.sum == Fixture.wrappingSum(expectedSurvivors.map { inputs[$0]! }, length: 16))
    }
}
