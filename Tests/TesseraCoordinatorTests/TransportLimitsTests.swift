import GRPCNIOTransportHTTP2
import NIOCore
import NIOEmbedded
import NIOSSL
import NIOTLS
import Synchronization
import TesseraFederation
import TesseraWire
import Testing

@testable import TesseraCoordinator

/// The value types behind the coordinator's limits, each on its own: the rate meter, the
/// rejection ledger, budget and log, connection admission, and the handshake deadline.
@Suite struct ProgressMeterTests {
    @Test func aTransferIsJudgedOnlyOnceItHasRunAWholeWindow() {
        var meter = ProgressMeter(minimumBytesPerSecond: 100, window: .seconds(10), now: .seconds(5))
        #expect(meter.requiredBytes == 1000)
        #expect(!meter.isTooSlow(now: .seconds(15) - .milliseconds(1)))
        #expect(meter.isTooSlow(now: .seconds(15)))
        meter.record(1000, now: .seconds(15))
        #expect(!meter.isTooSlow(now: .seconds(15)))
        // The bytes at 15 s leave the window after 25 s.
        #expect(!meter.isTooSlow(now: .seconds(25) - .milliseconds(1)))
        #expect(meter.isTooSlow(now: .seconds(25)))
    }

    @Test func theWindowCountsOnlyItsOwnBytesAndMemoryStaysBounded() {
        var meter = ProgressMeter(minimumBytesPerSecond: 10, window: .seconds(8), now: .zero)
        // A byte every 10 ms for 100 s: samples stay a handful, not ten thousand.
        for step in 1...10_000 { meter.record(1, now: .milliseconds(step * 10)) }
        #expect(meter.samples.count <= 11, "\(meter.samples.count) samples")
        #expect(meter.total == 10_000)
        // 800 bytes in the last 8 s, give or take the one-second resolution, never fewer.
        let inWindow = meter.bytesInWindow(endingAt: .seconds(100))
        #expect(inWindow >= 800 && inWindow <= 900, "\(inWindow)")
        #expect(!meter.isTooSlow(now: .seconds(100)))
        #expect(meter.isTooSlow(now: .seconds(108) + .milliseconds(500)))
    }

    @Test func aRateOfZeroNeverJudges() {
        let meter = ProgressMeter(minimumBytesPerSecond: 0, window: .seconds(1), now: .zero)
        #expect(!meter.isTooSlow(now: .seconds(1000)))
    }
}

@Suite struct RejectionBoundsTests {
    func record(_ site: SiteID, _ index: Int) -> CoordinatorService.RejectionRecord {
        CoordinatorService.RejectionRecord(
            site: site, rejection: Rejection(code: .staleMessage, reason: "stale \(index)"))
    }

    @Test func theLedgerKeepsTheMostRecentRecordsAndCountsEvery() {
        var ledger = RejectionLedger(capacity: 3)
        for index in 0..<10 { ledger.append(record(index < 7 ? "a" : "b", index)) }
        #expect(ledger.records.map(\.rejection.reason) == ["stale 7", "stale 8", "stale 9"])
        #expect(ledger.totals == ["a": 7, "b": 3])
        #expect(ledger.total == 10)
        #expect(ledger.dropped == 7)
        var none = RejectionLedger(capacity: 0)
        none.append(record("a", 0))
        #expect(none.records.isEmpty && none.totals == ["a": 1])
    }

    @Test func aSessionsBudgetRunsOutAtTheMaximumWithinTheWindow() {
        func spend(_ budget: inout RejectionBudget, at seconds: [Int64]) -> [Bool] {
            seconds.map { budget.spend(now: .seconds($0)) }
        }
        var budget = RejectionBudget(maximum: 3, window: .seconds(60))
        // The third within 60 s is the last.
        #expect(spend(&budget, at: [0, 10, 59]) == [true, true, false])
        // A site rejected now and then keeps its session: a new window starts at 60 s.
        var slow = RejectionBudget(maximum: 3, window: .seconds(60))
        #expect(spend(&slow, at: [0, 30, 60, 61, 62]) == [true, true, true, true, false])
    }

    @Test func aBurstIsLoggedOnceAndCountedThenSummarised() {
        var log = BurstLog<SiteID>(interval: .seconds(10))
        let first = log.record("a", now: .zero)
        #expect(first.log && first.ended == nil)
        for second in 1...9 {
            let next = log.record("a", now: .seconds(second))
            #expect(!next.log)
        }
        let other = log.record("b", now: .seconds(5))
        #expect(other.log, "each site has its own burst")
        #expect(log.flush(now: .seconds(9)).isEmpty)
        let summaries = log.flush(now: .seconds(10))
        #expect(summaries == [.init(key: "a", suppressed: 9, interval: .seconds(10))])
        #expect(log.bursts.keys.sorted() == ["b"], "a flushed burst is forgotten")
        // The next occurrence after the interval is logged and reports what its burst held back.
        _ = log.record("b", now: .seconds(6))
        let again = log.record("b", now: .seconds(16))
        #expect(again.log && again.ended?.suppressed == 1)
    }
}

@Suite struct ConnectionAdmissionTests {
    static let limits = ConnectionAdmission.Limits(
        connections: 6, connectionsPerAddress: 3, pendingHandshakes: 4, pendingHandshakesPerAddress: 2)

    func admitted(_ result: Result<UInt64, ConnectionAdmission.Refusal>) -> UInt64? {
        if case .success(let id) = result { return id }
        return nil
    }

    func refusal(_ result: Result<UInt64, ConnectionAdmission.Refusal>) -> ConnectionAdmission.Refusal? {
        if case .failure(let refusal) = result { return refusal }
        return nil
    }

    @Test func unfinishedHandshakesAreCappedPerAddressAndInAll() {
        var admission = ConnectionAdmission(limits: Self.limits)
        let a1 = admitted(admission.admit(address: "10.0.0.1"))
        let a2 = admitted(admission.admit(address: "10.0.0.1"))
        #expect(a1 != nil && a2 != nil)
        #expect(refusal(admission.admit(address: "10.0.0.1")) == .pendingHandshakesFromAddress)
        // Once one completes its handshake, the address may start another.
        admission.handshakeCompleted(a1!)
        let a3 = admitted(admission.admit(address: "10.0.0.1"))
        #expect(a3 != nil)
        #expect(refusal(admission.admit(address: "10.0.0.1")) == .connectionsFromAddress)
        let b1 = admitted(admission.admit(address: "10.0.0.2"))
        let b2 = admitted(admission.admit(address: "10.0.0.2"))
        #expect(b1 != nil && b2 != nil)
        #expect(admission.pending == 4)
        #expect(refusal(admission.admit(address: "10.0.0.3")) == .pendingHandshakes)
        admission.handshakeCompleted(b1!)
        let c1 = admitted(admission.admit(address: "10.0.0.3"))
        #expect(c1 != nil)
        #expect(admission.open == 6)
        #expect(refusal(admission.admit(address: "10.0.0.4")) == .connections)
    }

    @Test func closingForgetsEverythingAndCountsReturnToZero() {
        var admission = ConnectionAdmission(limits: Self.limits)
        var ids: [UInt64] = []
        for address in ["10.0.0.1", "10.0.0.2", "10.0.0.1"] {
            ids.append(admitted(admission.admit(address: address))!)
        }
        admission.handshakeCompleted(ids[0])
        admission.handshakeCompleted(ids[0])  // a second event changes nothing
        #expect(admission.pending == 2)
        for id in ids { admission.closed(id) }
        admission.closed(ids[0])  // nor does a second close
        #expect(admission.open == 0 && admission.pending == 0)
        #expect(admission.addresses.isEmpty)
    }
}

/// The handler that closes a connection whose TLS handshake does not complete in time, on an
/// embedded channel whose clock the test moves.
@Suite struct ConnectionGuardHandlerTests {
    func connectedChannel(_ handler: ConnectionGuardHandler) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
        return channel
    }

    @Test func aConnectionWithoutAHandshakeIsClosedAtTheTimeout() throws {
        let timedOut = Flag()
        let channel = try connectedChannel(
            ConnectionGuardHandler(mode: .awaitHandshake(.seconds(10)), onTimeout: { timedOut.set() }))
        channel.embeddedEventLoop.advanceTime(by: .seconds(10) - .nanoseconds(1))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .nanoseconds(1))
        #expect(!channel.isActive)
        #expect(timedOut.isSet)
    }

    @Test func aCompletedHandshakeCancelsTheDeadline() throws {
        let completed = Flag()
        let timedOut = Flag()
        let channel = try connectedChannel(
            ConnectionGuardHandler(
                mode: .awaitHandshake(.seconds(10)), onHandshake: { completed.set() }, onTimeout: { timedOut.set() }))
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: "grpc-exp"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(3600))
        #expect(channel.isActive)
        #expect(completed.isSet && !timedOut.isSet)
        _ = try channel.finish()
    }

    @Test func aRefusedConnectionIsClosedAsSoonAsItIsActive() throws {
        let channel = EmbeddedChannel(handler: ConnectionGuardHandler(mode: .refuse))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 4000)).wait()
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }
}

@Suite struct CoordinatorLimitsTests {
    @Test func theServerConfigurationCarriesEveryHTTP2Limit() {
        let limits = CoordinatorLimits(
            idleTimeout: .seconds(61), keepaliveInterval: .seconds(31), keepaliveTimeout: .seconds(11),
            minimumClientPingInterval: .seconds(6), maximumStreamsPerConnection: 7, maximumMessageBytes: 300_000)
        var config = HTTP2ServerTransport.Posix.Config.defaults
        config.apply(limits, maximumChunkBytes: WireProtocol.defaultChunkBytes)
        #expect(config.http2.maxConcurrentStreams == 7)
        #expect(config.rpc.maxRequestPayloadSize == 300_000)
        #expect(config.connection.maxIdleTime == .seconds(61))
        #expect(config.connection.keepalive.time == .seconds(31))
        #expect(config.connection.keepalive.timeout == .seconds(11))
        #expect(config.connection.keepalive.clientBehavior.minPingIntervalWithoutCalls == .seconds(6))
        #expect(config.connection.keepalive.clientBehavior.allowWithoutCalls)
        // Never below one chunk message.
        var small = config
        small.apply(
            CoordinatorLimits(maximumMessageBytes: 2048), maximumChunkBytes: WireProtocol.defaultChunkBytes)
        #expect(
            small.rpc.maxRequestPayloadSize == WireProtocol.defaultChunkBytes + CoordinatorLimits.envelopeOverheadBytes)
    }

    @Test func aLimitOutOfRangeNamesItsFlag() {
        #expect(throws: Never.self) { try CoordinatorLimits().validate() }
        let zero = #expect(throws: LimitError.self) { try CoordinatorLimits(maximumSessionsPerSite: 0).validate() }
        #expect(zero?.flag == "max-sessions-per-site")
        let timeout = #expect(throws: LimitError.self) { try CoordinatorLimits(handshakeTimeout: .zero).validate() }
        #expect(timeout?.description.hasPrefix("--handshake-timeout") == true)
    }
}

/// A flag set from a callback on another thread.
final class Flag: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
