import TesseraFederation
import TesseraSecAgg
import TesseraTransport
import TesseraWire
public import Tracing

/// The coordinator's spans: one trace per round, read off the state machine's actions.
///
/// A `round` root span (experiment, round, attempt, cohort size, outcome; an error status when
/// the round fails) has one child per stage the round goes through: `selection`, `broadcast`
/// (sending the train tasks), `training`, each SecAgg stage (`share_keys`, `masked_input`,
/// `consistency_check`, `unmasking`), `aggregation` and `evaluation`. The machine is pure and
/// may pass through several stages in one event (the last stage closes, the strategy runs and
/// the next round starts), so the spans follow its actions in order, not only its stage before
/// and after: a train task opens training, a SecAgg request its stage, a published model the
/// aggregation (which began when the event did), a finished round ends every span of it.
///
/// ``traceparent`` is the context of the span open now, stamped on the round's messages so
/// each site continues the round's trace. With no tracer, every method returns at once.
struct RoundTracing {
    private let tracer: (any Tracer)?
    private let experimentID: String
    /// The highest round whose span was opened: a round opens once, never again after it ends.
    private var lastOpened: Int
    private var open: OpenRound?
    private var eventStart: DefaultTracerClock.Instant?
    /// The trace id of a round that ended in the event under way (for its last log lines).
    private var endedTraceID: String?

    private struct OpenRound {
        var round: Int
        var span: any Span
        var traceID: String?
        var stage: (name: String, span: any Span)?
        var broadcast: (any Span)?
        /// Evaluation has begun: a secure evaluation's SecAgg stages stay inside its span.
        var evaluating = false
        var roundParent: String?
        var stageParent: String?
        /// The traceparent of `stage`'s span, else the round's.
        var traceparent: String? { stageParent ?? roundParent }
    }

    /// `round` is the machine's round now: a resumed coordinator traces the rounds after it.
    init(tracer: (any Tracer)?, experimentID: String, round: Int) {
        self.tracer = tracer
        self.experimentID = experimentID
        self.lastOpened = round
    }

    /// What the messages of the round stage open now carry (`nil`: none, tracing is off).
    var traceparent: String? { open?.traceparent }

    /// The trace id of the round in progress, for its log lines.
    var traceID: String? { open?.traceID ?? endedTraceID }

    /// Call before the machine handles an event.
    mutating func eventBegins() {
        guard tracer != nil else { return }
        eventStart = DefaultTracerClock.now
    }

    /// Call with each of the event's actions, in order, before it is carried out.
    mutating func willPerform(_ action: CoordinatorAction) {
        guard tracer != nil else { return }
        switch action {
        case .roundStarted(let round, let attempt, _):
            openRound(round)
            open?.span.attributes["tessera.round.attempt"] = attempt
            endStage()
        case .send(_, .train):
            guard open?.broadcast == nil, open?.stage?.name != RoundStage.training.rawValue else { return }
            let broadcast = startChild("broadcast")
            open?.broadcast = broadcast
            startStage(RoundStage.training.rawValue)
        case .send(_, .secAgg(_, let request)):
            guard open?.evaluating == false else { return }
            startStage(RoundStage(request.stage).rawValue)
        case .send(_, .evaluate):
            startStage(RoundStage.evaluation.rawValue)
            open?.evaluating = true
        case .publish:
            // The strategy ran inside the event that closed the last stage.
            endStage(at: eventStart)
            startStage(RoundStage.aggregation.rawValue, at: eventStart)
        case .roundFinished(let record):
            finishRound(record)
        case .participantLost(_, let site, let stage):
            open?.span.addEvent(
                SpanEvent(
                    name: "participant_lost",
                    attributes: ["tessera.site": .string("\(site)"), "tessera.stage": .string(stage.rawValue)]))
        case .send(_, .leaveRound), .scheduleDeadline, .reject, .siteOutcomes, .experimentFinished, .log:
            break
        }
    }

    /// Call once the event's actions are carried out, with the machine's state after it: a round
    /// waiting for its cohort opens its `selection`, and a stage entered without a message of
    /// its own gets its span.
    mutating func eventEnded(round: Int, stage: RoundStage?, isFinished: Bool) {
        guard tracer != nil else { return }
        if let broadcast = open?.broadcast {
            broadcast.end()
            open?.broadcast = nil
        }
        if open == nil, !isFinished, stage == nil, round > lastOpened {
            openRound(round)
        } else if let stage, open?.round == round, open?.evaluating == false, open?.stage?.name != stage.rawValue {
            startStage(stage.rawValue)
        }
        eventStart = nil
        endedTraceID = nil
    }

    /// Ends the spans of a round still open (the coordinator stops mid-round).
    mutating func stop() {
        guard let round = open else { return }
        round.broadcast?.end()
        round.stage?.span.end()
        round.span.attributes["tessera.round.outcome"] = "stopped"
        round.span.end()
        open = nil
    }

    // MARK: Spans

    private mutating func openRound(_ round: Int) {
        guard let tracer, open?.round != round else { return }
        stop()
        let span = tracer.startSpan("round", context: ServiceContext.topLevel, at: eventStart ?? DefaultTracerClock.now)
        span.attributes["tessera.experiment"] = experimentID
        span.attributes["tessera.round"] = round
        let parent = Traceparent.of(span.context, tracer: tracer)
        open = OpenRound(round: round, span: span, traceID: parent?.traceID, roundParent: parent?.encoded)
        lastOpened = max(lastOpened, round)
        startStage(RoundStage.selection.rawValue)
    }

    private func startChild(_ name: String, at instant: DefaultTracerClock.Instant? = nil) -> (any Span)? {
        guard let tracer, let round = open else { return nil }
        let span = tracer.startSpan(name, context: round.span.context, at: instant ?? DefaultTracerClock.now)
        span.attributes["tessera.round"] = round.round
        return span
    }

    private mutating func startStage(_ name: String, at instant: DefaultTracerClock.Instant? = nil) {
        guard let tracer, open != nil, open?.stage?.name != name else { return }
        endStage(at: instant)
        guard let span = startChild(name, at: instant) else { return }
        open?.stage = (name, span)
        open?.stageParent = Traceparent.of(span.context, tracer: tracer)?.encoded
    }

    private mutating func endStage(at instant: DefaultTracerClock.Instant? = nil) {
        guard let stage = open?.stage else { return }
        stage.span.end(at: instant ?? DefaultTracerClock.now)
        open?.stage = nil
        open?.stageParent = nil
    }

    private mutating func finishRound(_ record: RoundRecord) {
        openRound(record.round)
        guard let round = open else { return }
        round.broadcast?.end()
        round.stage?.span.end()
        round.span.attributes["tessera.round.cohort_size"] = record.cohortSize
        round.span.attributes["tessera.round.outcome"] = record.status.rawValue
        if record.status == .failed {
            // The reason is the coordinator's own sentence (counts and stage names, no site data).
            round.span.setStatus(SpanStatus(code: .error, message: record.failureReason.map { String($0.prefix(300)) }))
        }
        round.span.end()
        endedTraceID = round.traceID
        open = nil
    }
}
