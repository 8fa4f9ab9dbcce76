import Foundation
import TesseraFederation
import TesseraParticipant
import TesseraTransport
import Testing

/// The `connection:` section of a site file and the mode of `tessera-participant`: what a site's
/// operator sets about how the session is kept, checked before anything connects.
@Suite struct SiteConnectionSettingsTests {
    typealias Site = SiteConfigTests.Site

    @Test func withoutAConnectionSectionTheClientDefaultsApply() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let config = try site.config(SiteConfigTests.valid())
        #expect(config.connection == SiteConnectionSettings())
        let configuration = ParticipantProgram.clientConfiguration(for: config, mode: .service)
        let defaults = ParticipantClient.Configuration()
        #expect(configuration.backoffBase == defaults.backoffBase && configuration.backoffCap == defaults.backoffCap)
        #expect(configuration.missedCoordinatorHeartbeats == defaults.missedCoordinatorHeartbeats)
        #expect(configuration.keepaliveInterval == defaults.keepaliveInterval)
    }

    @Test func everyConnectionKeyIsReadIntoTheClientConfiguration() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let config = try site.config(
            SiteConfigTests.valid(
                adding: "connection:", "  backoff_base: 2", "  backoff_cap: 120", "  missed_heartbeats: 5",
                "  welcome_timeout: 45", "  keepalive_interval: 0", "  keepalive_timeout: 7.5"))
        let configuration = ParticipantProgram.clientConfiguration(for: config, mode: .service)
        #expect(configuration.backoffBase == .seconds(2))
        #expect(configuration.backoffCap == .seconds(120))
        #expect(configuration.missedCoordinatorHeartbeats == 5)
        #expect(configuration.welcomeTimeout == .seconds(45))
        #expect(configuration.keepaliveInterval == nil, "keepalive_interval: 0 turns keepalive off")
        #expect(configuration.keepaliveTimeout == .milliseconds(7_500))
    }

    @Test func serviceModeReconnectsAfterTheCoordinatorEndsASessionAndOnceDoesNot() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        let config = try site.config(SiteConfigTests.valid())
        let service = ParticipantProgram.clientConfiguration(for: config, mode: .service)
        let once = ParticipantProgram.clientConfiguration(for: config, mode: .once)
        #expect(service.reconnectAfterSessionEnds && service.maximumAttempts == nil)
        #expect(!once.reconnectAfterSessionEnds)
        #expect(ParticipantProgram(configFile: site.root).mode == .service, "service is the default")
    }

    @Test func connectionValuesOutOfRangeAreRefusedAtTheValue() throws {
        let site = try Site()
        defer { try? FileManager.default.removeItem(at: site.root) }
        func refusal(_ lines: String...) -> String {
            let text = (SiteConfigTests.lines + ["connection:"] + lines.map { "  " + $0 }).joined(separator: "\n")
            return site.refusal(text + "\n") ?? "accepted"
        }
        #expect(refusal("backoff_base: 0").hasSuffix("connection.backoff_base: must be in (0, 3600] seconds, got 0.0"))
        #expect(refusal("backoff_cap: 100000").contains("connection.backoff_cap: must be in (0, 86400] seconds"))
        #expect(
            refusal("backoff_base: 10", "backoff_cap: 5").hasSuffix(
                "connection.backoff_cap: backoff_cap (5.0 seconds) must be at least backoff_base (10.0 seconds)"))
        // A base above the default cap, with no cap given, is named at the base.
        #expect(refusal("backoff_base: 60").contains("connection.backoff_base: backoff_cap"))
        #expect(refusal("missed_heartbeats: 0").hasSuffix("connection.missed_heartbeats: must be 1 to 100, got 0"))
        #expect(refusal("welcome_timeout: 0.5").contains("connection.welcome_timeout: must be in [1, 3600] seconds"))
        #expect(refusal("keepalive_interval: 2").contains("connection.keepalive_interval: must be 0 (no keepalive)"))
        #expect(refusal("keepalive_timeout: -1").contains("connection.keepalive_timeout: must be in [1, 3600]"))
        #expect(refusal("keepalive_intervals: 30").contains("connection.keepalive_intervals: unknown key"))
        #expect(refusal("backoff_cap: soon").contains("connection.backoff_cap: expected"))
    }

    @Test func onlyARefusalAPersonMustActOnStopsTheServiceUnitForGood() {
        let refused = TesseraRuntimeError(.sessionRefused, "revoked")
        let configuration = TesseraRuntimeError(.invalidConfiguration, "bad file")
        let transport = TesseraRuntimeError(.transport, "gave up")
        #expect(ParticipantProgram.exitStatus(for: refused) == ParticipantProgram.exitStatusNeedsAttention)
        #expect(ParticipantProgram.exitStatus(for: configuration) == 78)
        #expect(ParticipantProgram.exitStatus(for: transport) == 1)
    }
}
