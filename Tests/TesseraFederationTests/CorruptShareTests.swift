import Synchronization
import TesseraCrypto
import TesseraSecAgg
import TesseraSimulation
import Testing

@testable import TesseraFederation

@Suite struct CorruptShareTests {
    /// site-2 corrupts one self-mask share in its first unmasking answer: the coordinator names
    /// it, discards the share, and the round completes from the honest shares.
    @Test func aSiteThatReturnsACorruptSelfMaskShareIsNamedAndTheRoundCompletes() throws {
        let lines = Mutex<[String]>([])
        let federation = InMemoryFederation(
            plan: RoundFixtures.plan(rounds: 2, neighbourhood: .complete, threshold: .fraction(0.6)),
            initialModel: try RoundFixtures.initialModel(), strategy: try FedAvg(),
            participants: try RoundFixtures.agents(6), log: { line in lines.withLock { $0.append(line) } })
        var corrupted = false
        federation.tamper = { site, message in
            guard site == "site-2", !corrupted, case .secAgg(1, .unmaskingResponse(var m)) = message,
                let index = m.selfMaskShares.firstIndex(where: { $0.peer != m.sender })
            else { return message }
            corrupted = true
            m.selfMaskShares[index].share.values[0] = (m.selfMaskShares[index].share.values[0] + 1) % Shamir.prime
            return .secAgg(round: 1, .unmaskingResponse(m))
        }
        let outcome = federation.run()
        #expect(corrupted)
        #expect(outcome.completedRounds == 2, "\(outcome.records.map(\.failureReason))")
        // Its masked input was already in the running sum: it stays among the contributors.
        #expect(outcome.records.first { $0.round == 1 }?.contributors == 6)
        #expect(
            outcome.rejections.contains { $0.site == "site-2" && $0.reason.contains("shareCommitmentMismatch") },
            "\(outcome.rejections)")
        let log = lines.withLock { $0 }
        let named = log.filter { $0.hasPrefix("round 1: site-2 returned a corrupt self-mask share of site-") }
        #expect(named.count == 1, "\(log)")
        #expect(named.first?.hasSuffix("; excluded") == true)
    }
}
