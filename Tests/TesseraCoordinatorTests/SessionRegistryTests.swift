import TesseraWire
import Testing

@testable import TesseraCoordinator

/// Which stream speaks for which site: one registered session per site, the newer wins, and
/// every registration is counted.
@Suite struct SessionRegistryTests {
    func open(_ registry: inout SessionRegistry, _ site: String, at now: Duration = .zero) -> UInt64 {
        let (_, continuation) = AsyncStream.makeStream(of: Tessera_V1_CoordinatorEnvelope.self)
        return registry.open(
            site: site, outbound: continuation, decoder: ParticipantEnvelopeDecoder(maximumChunkBytes: 1024), now: now)
    }

    @Test func aNewerRegistrationReplacesTheOlderAndBothAreCounted() {
        var registry = SessionRegistry()
        let first = open(&registry, "site-a")
        let second = open(&registry, "site-a")
        #expect(first != second)
        #expect(registry.connectedSites.isEmpty, "a stream speaks for its site only after Hello")
        let result1 = registry.register(first)
        #expect(result1 == nil)
        let result2 = registry.register(second)
        #expect(result2 == first)
        #expect(registry.stream(of: "site-a") == second)
        #expect(!registry.isActive(first))
        #expect(registry.joins["site-a"] == 2)
        #expect(registry.connectedSites == ["site-a"])
    }

    @Test func aClosedStreamKeepsItsReasonUntilItsHandlerTakesIt() {
        var registry = SessionRegistry()
        let id = open(&registry, "site-a")
        _ = registry.register(id)
        let result3 = registry.deactivate(id)
        #expect(result3)
        let result4 = registry.close(id, reason: .replaced)
        #expect(result4 != nil)
        let result5 = registry.close(id, reason: .refused)
        #expect(result5 == nil, "closing twice changes nothing")
        #expect(registry.connections[id] == nil)
        #expect(registry.takeCloseReason(id) == .replaced)
        #expect(registry.takeCloseReason(id) == nil)
        #expect(registry.connectedSites.isEmpty)
        #expect(registry.joins["site-a"] == 1)
    }

    /// Silent means nothing arrived for longer than the limit; streams waiting for an upload
    /// slot are silent because nobody reads them, and are left alone.
    @Test func silentStreamsAreThoseQuietForLongerThanTheLimit() {
        var registry = SessionRegistry()
        let quiet = open(&registry, "site-a")
        let waiting = open(&registry, "site-b")
        let lively = open(&registry, "site-c")
        registry.connections[lively]!.lastSeen = .seconds(25)
        #expect(registry.silentStreams(now: .seconds(30), limit: .seconds(30), excluding: []).isEmpty)
        let silent = registry.silentStreams(now: .seconds(31), limit: .seconds(30), excluding: [waiting])
        #expect(silent == [quiet])
    }
}
