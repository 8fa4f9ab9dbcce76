import Testing

@testable import TesseraFederation

/// The coordinator's result is a function of what the sites sent, not of the order it arrived in.
@Suite struct ArrivalOrderTests {
    /// Updates whose running `Double` sum depends on the order: weighted, 2⁶⁰ and 2¹¹ are 54
    /// bits apart, so their sum rounds, and 2¹¹ survives exactly only when the two large values
    /// cancel first.
    static let deltas: [[Float]] = {
        let large = Float(sign: .plus, exponent: 60, significand: 1)
        let count = RoundFixtures.architecture.parameterCount!
        return [large, 2048, -large].map { first in [first] + [Float](repeating: 0.25, count: count - 1) }
    }()

    /// Runs one plaintext round, delivering the three sites' updates in `order`, and returns
    /// the published model.
    static func publishedModel(order: [Int]) throws -> [Float] {
        let agents = try RoundFixtures.agents(3)
        var machine = CoordinatorStateMachine(
            plan: RoundFixtures.plan(rounds: 1, secure: false, minimum: 3),
            initialModel: try RoundFixtures.initialModel(),
            strategy: try FedAvg())
        for agent in agents { _ = machine.handle(.participantAvailable(agent.descriptor), now: 0) }
        _ = machine.handle(.start, now: 0)
        var published: [Float]?
        for index in order {
            let report = TrainingReport(sampleCount: 50, loss: 0.5, accuracy: nil, steps: 1)
            let message = ParticipantMessage.update(round: 1, delta: deltas[index], report: report)
            for case .publish(let model) in machine.handle(.message(from: agents[index].site, message), now: 0) {
                published = model.parameters
            }
        }
        return try #require(published)
    }

    @Test func aPlaintextRoundPublishesTheSameModelForEveryArrivalOrder() throws {
        let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]]
        let models = try orders.map { try Self.publishedModel(order: $0) }
        let bits = Set(models.map { $0.map(\.bitPattern) })
        #expect(bits.count == 1, "\(models.map { $0[0] })")
        // And it is the exact mean: (2⁶⁰ + 2¹¹ − 2⁶⁰) / 3 added to the initial weight.
        let initial = try RoundFixtures.initialModel()
        let gap = abs(models[0][0] - (initial[0] + 2048 / 3))
        #expect(gap < 1e-3, "\(models[0][0]) from \(initial[0])")
    }
}

/// A durable coordinator keeps only its latest records in memory: the state has them all.
@Suite struct RecordLimitTests {
    /// Five plaintext rounds of three sites, with `limit` set before the first.
    static func run(limit: Int?) throws -> CoordinatorStateMachine {
        let agents = try RoundFixtures.agents(3)
        var plan = RoundFixtures.plan(rounds: 5, secure: false, minimum: 3)
        plan.evaluationEvery = 0
        var machine = CoordinatorStateMachine(
            plan: plan, initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg())
        machine.recordLimit = limit
        for agent in agents { _ = machine.handle(.participantAvailable(agent.descriptor), now: 0) }
        _ = machine.handle(.start, now: 0)
        let delta = [Float](repeating: 0.25, count: RoundFixtures.architecture.parameterCount!)
        for round in 1...5 {
            for agent in agents {
                let report = TrainingReport(sampleCount: 50, loss: 0.5, accuracy: nil, steps: 1)
                _ = machine.handle(
                    .message(from: agent.site, .update(round: round, delta: delta, report: report)), now: 0)
            }
        }
        return machine
    }

    @Test func theMachineKeepsOnlyItsLatestRecordsWhenLimited() throws {
        let unlimited = try Self.run(limit: nil)
        var limited = try Self.run(limit: 2)
        try #require(unlimited.records.count > 2)
        #expect(limited.completedRounds == unlimited.completedRounds)
        #expect(limited.globalModel == unlimited.globalModel)
        #expect(limited.records == Array(unlimited.records.suffix(2)))
        limited.recordLimit = 1
        #expect(limited.records == Array(unlimited.records.suffix(1)))
    }
}
