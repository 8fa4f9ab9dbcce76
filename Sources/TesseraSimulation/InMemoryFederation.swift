import Foundation
public import TesseraFederation
import TesseraSecAgg

/// A whole federation in one process with no network: the coordinator state machine and a set
/// of `ParticipantAgent`s, with messages handed straight from one to the other.
///
/// It is a *driver*, not a second implementation: it holds no round logic. It delivers
/// actions, keeps deadlines on a virtual clock (a deadline fires as soon as nothing else can
/// happen, so a run never sleeps), and injects faults — a participant that disconnects or goes
/// silent when a given message reaches it — to test dropout handling at every stage.
///
/// ```swift
/// let run = try InMemoryFederation(plan: plan, initialModel: w0, strategy: FedAvg(),
///                                  participants: agents).run()
/// ```
public final class InMemoryFederation {
    /// When a fault strikes: on delivery of a message of this kind to the participant.
    public enum FaultPoint: Sendable, Hashable {
        /// Before training (the participant never answers the training task).
        case training
        /// After AdvertiseKeys, when the ShareKeys request arrives.
        case shareKeys
        /// After ShareKeys, when the masked-input request arrives.
        case maskedInput
        /// After sending its masked input, when the unmasking request arrives.
        case unmasking
        /// When asked to evaluate.
        case evaluation
    }

    public enum FaultKind: Sendable, Hashable {
        /// The connection drops: the coordinator is told at once.
        case disconnect
        /// The participant stops answering: only the stage deadline notices.
        case silent
    }

    public struct Fault: Sendable, Hashable {
        public var site: SiteID
        public var round: Int
        public var point: FaultPoint
        public var kind: FaultKind
        /// Reconnect once the round is over (a restarted participant).
        public var rejoinNextRound: Bool

        public init(
            site: SiteID, round: Int, point: FaultPoint, kind: FaultKind = .disconnect, rejoinNextRound: Bool = true
        ) {
            self.site = site
            self.round = round
            self.point = point
            self.kind = kind
            self.rejoinNextRound = rejoinNextRound
        }
    }

    /// What a run produced.
    public struct Outcome: Sendable {
        public var records: [RoundRecord]
        public var published: [PublishedModel]
        public var finalModel: [Float]
        public var completedRounds: Int
        /// Every rejection the coordinator sent, with its reason.
        public var rejections: [(site: SiteID, reason: String)]
        /// Every participant message the coordinator received, in order (for transcript checks).
        public var transcript: [(site: SiteID, message: ParticipantMessage)]
    }

    private var coordinator: CoordinatorStateMachine
    private let agents: [SiteID: ParticipantAgent]
    private var faults: [Fault]
    private let log: (String) -> Void
    /// Lets a test replace what a participant sends (to simulate a misbehaving site).
    public var tamper: ((SiteID, ParticipantMessage) -> ParticipantMessage?)?
    /// Passes the driver's virtual time (which advances only when a deadline fires) to the
    /// coordinator instead of the wall clock, so that stage durations show which deadlines
    /// held the round up. Off by default: reports measure real computation.
    public var reportsVirtualTime = false

    private var queue: [CoordinatorEvent] = []
    private var deadlines: [(due: Double, token: Int)] = []
    private var virtualTime = 0.0
    private var offline: Set<SiteID> = []
    private var silent: Set<SiteID> = []
    private var rejoinAfterRound: [Int: [SiteID]] = [:]
    private var published: [PublishedModel] = []
    private var rejections: [(SiteID, String)] = []
    private var transcript: [(SiteID, ParticipantMessage)] = []
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant

    public init(
        plan: FederationPlan, initialModel: [Float], strategy: any FederatedStrategy, participants: [ParticipantAgent],
        faults: [Fault] = [], log: @escaping (String) -> Void = { _ in }
    ) {
        self.coordinator = CoordinatorStateMachine(plan: plan, initialModel: initialModel, strategy: strategy)
        self.agents = Dictionary(uniqueKeysWithValues: participants.map { ($0.site, $0) })
        self.faults = faults
        self.log = log
        self.origin = clock.now
    }

    /// Wall-clock seconds since the driver was made: what stage durations are measured in.
    private var now: Double {
        if reportsVirtualTime { return virtualTime }
        let elapsed = clock.now - origin
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    }

    /// Runs the experiment to the end.
    public func run() -> Outcome {
        for site in agents.keys.sorted() {
            queue.append(.participantAvailable(agents[site]!.descriptor))
        }
        queue.append(.start)
        while !coordinator.isFinished {
            if queue.isEmpty {
                guard let next = deadlines.min(by: { $0.due < $1.due }) else { break }
                deadlines.removeAll { $0.token == next.token }
                virtualTime = max(virtualTime, next.due)
                queue.append(.deadlinePassed(token: next.token))
            }
            let event = queue.removeFirst()
            if case .message(let site, let message) = event { transcript.append((site, message)) }
            for action in coordinator.handle(event, now: now) { perform(action) }
        }
        return Outcome(
            records: coordinator.records, published: published, finalModel: coordinator.globalModel,
            completedRounds: coordinator.completedRounds, rejections: rejections, transcript: transcript)
    }

    private func perform(_ action: CoordinatorAction) {
        switch action {
        case .send(let site, let message):
            deliver(message, to: site)
        case .scheduleDeadline(let token, let seconds):
            deadlines.append((virtualTime + seconds, token))
        case .reject(let site, let reason):
            rejections.append((site, reason))
        case .publish(let model):
            published.append(model)
        case .roundFinished(let record):
            log(record.summaryLine)
            for site in rejoinAfterRound.removeValue(forKey: record.round) ?? [] {
                offline.remove(site)
                silent.remove(site)
                if let agent = agents[site] { queue.append(.participantAvailable(agent.descriptor)) }
            }
        case .experimentFinished, .roundStarted, .siteOutcomes, .participantLost:
            break
        case .log(let line):
            log(line)
        }
    }

    private func deliver(_ message: CoordinatorMessage, to site: SiteID) {
        guard let agent = agents[site], !offline.contains(site) else { return }
        if silent.contains(site) { return }
        if let fault = matchingFault(message, site: site) {
            switch fault.kind {
            case .disconnect:
                queue.append(.participantGone(site))
                if fault.rejoinNextRound {
                    // The site restarts at once with no round state and reconnects: it is out of
                    // this round (the coordinator saw it leave) and eligible for the next.
                    _ = agent.handle(.leaveRound(round: fault.round, reason: "restarted"))
                    queue.append(.participantAvailable(agent.descriptor))
                } else {
                    offline.insert(site)
                }
            case .silent:
                silent.insert(site)
                if fault.rejoinNextRound { rejoinAfterRound[fault.round, default: []].append(site) }
            }
            return
        }
        for reply in agent.handle(message) {
            let sent = tamper.map { $0(site, reply) } ?? reply
            if let sent { queue.append(.message(from: site, sent)) }
        }
    }

    private func matchingFault(_ message: CoordinatorMessage, site: SiteID) -> Fault? {
        let point: FaultPoint?
        switch message {
        case .train: point = .training
        case .evaluate: point = .evaluation
        case .secAgg(_, let request):
            switch request.stage {
            case .shareKeys: point = .shareKeys
            case .maskedInputCollection: point = .maskedInput
            case .unmasking: point = .unmasking
            default: point = nil
            }
        case .leaveRound: point = nil
        }
        guard let point,
            let index = faults.firstIndex(where: {
                $0.site == site && $0.round == message.round && $0.point == point
            })
        else { return nil }
        return faults.remove(at: index)
    }

}
