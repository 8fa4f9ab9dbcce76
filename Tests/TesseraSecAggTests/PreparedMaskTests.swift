import TesseraCrypto
import Testing

@testable import TesseraSecAgg

/// Masking ahead of the request (what a networked participant does) must send exactly the
/// vector that masking on request sends, whoever dropped out between the stages.
@Suite("Masked inputs prepared ahead of their request")
struct PreparedMaskTests {
    /// The masked inputs of a round, by sender.
    static func maskedInputs(_ outcome: SecAggSimulation.Outcome) -> [UInt32: [UInt32]] {
        var inputs: [UInt32: [UInt32]] = [:]
        for entry in outcome.transcript where entry.stage == .maskedInputCollection {
            guard case .maskedInput(let message)? = try? SecAggMessage.decode(entry.bytes) else { continue }
            inputs[entry.sender] = message.maskedInput
        }
        return inputs
    }

    @Test(
        "the same masked inputs and the same sum with and without preparation",
        arguments: [
            // Nobody drops; neighbours that advertised keys but never shared them (their masks are
            // in the prepared vectors and must be taken back out); a drop after sharing (its
            // masks stay); both; and a Harary graph. Drops are positions in the roster.
            ([], [], NeighbourGraph.Kind.complete),
            ([1, 4], [], .complete),
            ([], [2], .complete),
            ([0], [5], .complete),
            ([3], [], .harary(degree: 4, seed: [7])),
        ] as [([Int], [Int], NeighbourGraph.Kind)])
    func sameAsOnRequest(beforeSharing: [Int], beforeMasking: [Int], graph: NeighbourGraph.Kind) throws {
        var onRequest = Scenario()
        onRequest.ids = Fixture.roster(8)
        onRequest.kind = graph
        let ids = onRequest.ids
        onRequest.dropouts = SecAggSimulation.DropoutSchedule(dropBefore: [
            .shareKeys: Set(beforeSharing.map { ids[$0] }), .maskedInputCollection: Set(beforeMasking.map { ids[$0] }),
        ])
        var ahead = onRequest
        ahead.prepareAhead = true
        let expected = try onRequest.run()
        let prepared = try ahead.run()
        let sent = Self.maskedInputs(prepared)
        #expect(sent.count == ids.count - beforeSharing.count - beforeMasking.count)
        #expect(sent == Self.maskedInputs(expected))
        let dropped = Set((beforeSharing + beforeMasking).map { ids[$0] })
        onRequest.expectSum(prepared, of: ids.filter { !dropped.contains($0) })
        #expect(prepared.clientErrors.isEmpty)
    }

    @Test(
        "preparation needs ShareKeys and the round's vector length, and a vector prepared from another input is not sent"
    )
    func preparationGuards() throws {
        let ids: [UInt32] = [1, 2, 3]
        let length = 8
        let configuration = try SecAggConfiguration(
            roundID: 9, participants: ids, graph: .complete, threshold: 2, vectorLength: length,
            securityMode: .semiHonest)
        let inputs = Fixture.randomInputs(ids, length: length, seed: 5)
        var generator = DeterministicGenerator(seed: 3)
        var clients = try Dictionary(
            uniqueKeysWithValues: ids.map {
                ($0, try SecAggClient(id: $0, configuration: configuration, using: &generator))
            })
        var server = SecAggServer(configuration: configuration)

        // Before ShareKeys the neighbours' keys are not known: nothing to prepare.
        var early = clients[1]!.prepareMaskedInput(inputs[1]!)
        #expect(!early)
        for id in ids {
            try server.receive(SecAggMessage.advertiseKeys(try clients[id]!.advertiseKeys()).encoded(), from: id)
        }
        early = clients[1]!.prepareMaskedInput(inputs[1]!)
        #expect(!early)

        var prepared = false
        var sum: [UInt32]?
        while sum == nil {
            switch try server.closeStage() {
            case .requests(let requests):
                for request in requests {
                    let id = request.recipient
                    let answer = try clients[id]!.respond(
                        to: try SecAggMessage.decode(request.encoded()), input: inputs[id]!, using: &generator)
                    try server.receive(answer.encoded(), from: id)
                    if !prepared, clients[1]!.progress == .maskedInput {
                        // Participant 1 masks a decoy ahead; it is then asked to mask its real input.
                        let wrongLength = clients[1]!.prepareMaskedInput([1, 2, 3])
                        #expect(!wrongLength)
                        let decoy = clients[1]!.prepareMaskedInput([UInt32](repeating: 0xabcd, count: length))
                        #expect(decoy)
                        prepared = true
                    }
                }
            case .finished(let result):
                sum = result.sum
            }
        }
        #expect(prepared)
        #expect(sum == Fixture.wrappingSum(ids.map { inputs[$0]! }, length: length))
    }
}
