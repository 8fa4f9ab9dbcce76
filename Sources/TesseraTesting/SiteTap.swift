public import Logging
public import TesseraFederation
public import TesseraParticipant
public import TesseraTransport
public import TesseraWire

/// What a test does to one site's session to play a faulty or malicious site: rewrite what it
/// sends, or watch what it receives. Production configuration has no such hooks; a site runs
/// with a tap only when a test builds its client here.
public struct SiteTap: Sendable {
    /// Rewrites every envelope just before it is written (drop it, alter it, send extra ones).
    public var tamper: (@Sendable (Tessera_V1_ParticipantEnvelope) -> [Tessera_V1_ParticipantEnvelope])?
    /// Sees every coordinator message that passed the site's checks, before the site acts on it.
    public var inspectInbound: (@Sendable (CoordinatorInbound) -> Void)?

    public init(
        tamper: (@Sendable (Tessera_V1_ParticipantEnvelope) -> [Tessera_V1_ParticipantEnvelope])? = nil,
        inspectInbound: (@Sendable (CoordinatorInbound) -> Void)? = nil
    ) {
        self.tamper = tamper
        self.inspectInbound = inspectInbound
    }
}

extension ParticipantClient {
    /// A client whose session goes through `tap`.
    public static func tapped(
        agent: ParticipantAgent, configuration: Configuration = Configuration(), tap: SiteTap, clock: any ServiceClock,
        logger: Logger
    ) -> ParticipantClient {
        ParticipantClient(
            agent: agent, configuration: configuration,
            interception: SessionInterception(tamper: tap.tamper, inspectInbound: tap.inspectInbound), clock: clock,
            logger: logger)
    }
}
