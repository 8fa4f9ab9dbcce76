import InMemoryTracing
import TesseraCoordinator
import TesseraFederation
import TesseraParticipant
import TesseraTesting
import Testing
import Tracing

/// One trace per round, across the coordinator and the sites: a real federation over the
/// in-process transport, with one recording tracer shared by the coordinator and the sites
/// (three in the secure runs, the fewest secure aggregation accepts; two in the clear).
/// The sites' spans find their parents only through the `traceparent` in the envelope header.
@Suite struct RoundTracingTests {
    static let siteSpanNames: Set<String> = ["fetch", "training", "masking", "upload"]

    @Test func secureRoundsAreOneTraceEachWithTheSitesSpansUnderTheirStages() async throws {
        let tracer = W3CInMemoryTracer()
        let outcome = try await run(secure: true, rounds: 2, tracer: tracer)
        #expect(outcome.completedRounds == 2)
        let trace = try RecordedTrace(tracer.finishedSpans)
        #expect(tracer.activeSpans.isEmpty, "spans left open: \(tracer.activeSpans.map(\.operationName))")

        #expect(trace.rounds.map(\.round) == [1, 2])
        #expect(Set(trace.rounds.map(\.span.traceID)).count == 2, "the rounds share a trace")
        for round in trace.rounds {
            let attributes = round.span.attributes
            #expect(attributes.get("tessera.experiment") == .string("trace-secure"))
            #expect(attributes.get("tessera.round.attempt") == .int64(0))
            #expect(attributes.get("tessera.round.cohort_size") == .int64(3))
            #expect(attributes.get("tessera.round.outcome") == .string("completed"))
            let stages = trace.stages(of: round)
            for stage in stages {
                #expect(stage.parentSpanID == round.span.spanID, "\(stage.operationName) is not under its round")
            }
            let stageNames = Set(stages.map(\.operationName))
            let expectedStages: Set<String> = [
                "selection", "broadcast", "training", "share_keys", "masked_input", "consistency_check", "unmasking",
                "aggregation", "evaluation",
            ]
            #expect(stageNames == expectedStages, "round \(round.round)")
            try expectSiteSpans(of: round, in: trace, named: Self.siteSpanNames, sites: 3)
        }
        #expect(trace.orphans.isEmpty, "spans in no round's trace: \(trace.orphans.map(\.operationName))")
    }

    @Test func aPlaintextRoundTracesFetchTrainingAndUploadWithoutMasking() async throws {
        let tracer = W3CInMemoryTracer()
        let outcome = try await run(secure: false, rounds: 1, tracer: tracer)
        #expect(outcome.completedRounds == 1)
        let trace = try RecordedTrace(tracer.finishedSpans)
        let round = try #require(trace.rounds.first)
        #expect(trace.rounds.count == 1)
        let stageNames = Set(trace.stages(of: round).map(\.operationName))
        #expect(stageNames == ["selection", "broadcast", "training", "aggregation", "evaluation"])
        try expectSiteSpans(of: round, in: trace, named: ["fetch", "training", "upload"], sites: 2)
        #expect(trace.orphans.isEmpty, "spans in no round's trace: \(trace.orphans.map(\.operationName))")
    }

    @Test func withoutATracerNothingIsStampedOnTheWire() async throws {
        // The sites trace, the coordinator does not: the sites' spans are roots of their own.
        let tracer = W3CInMemoryTracer()
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(name: "trace-off", participants: 2, rounds: 1, secure: false, evaluateEvery: 1))
        let outcome = try await InProcessFederation.run(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(), participants: try experiment.agents(),
            configure: { _, configuration in configuration.tracer = tracer }, logger: testLogger())
        #expect(outcome.completedRounds == 1)
        let spans = tracer.finishedSpans
        #expect(!spans.isEmpty)
        #expect(!spans.contains { $0.operationName == "round" })
        #expect(spans.allSatisfy { $0.parentSpanID == nil }, "a site span found a parent with tracing off")
    }

    // MARK: Helpers

    private func run(secure: Bool, rounds: Int, tracer: W3CInMemoryTracer) async throws -> CoordinatorService.Outcome {
        let experiment = try PreparedExperiment(
            yaml: syntheticYAML(
                name: secure ? "trace-secure" : "trace-plain", participants: secure ? 3 : 2, rounds: rounds,
                secure: secure,
                evaluateEvery: 1))
        return try await InProcessFederation.run(
            plan: experiment.plan, initialModel: experiment.initialModel,
            strategy: try experiment.config.makeStrategy(), participants: try experiment.agents(), tracer: tracer,
            logger: testLogger())
    }

    static func site(of span: FinishedInMemorySpan) -> String? {
        guard case .string(let site)? = span.attributes.get("tessera.site") else { return nil }
        return site
    }

    /// Each site has every span of `names` in the round's trace, each under one of the round's
    /// coordinator spans, carrying the site and the round and nothing else.
    private func expectSiteSpans(
        of round: RecordedTrace.Round, in trace: RecordedTrace, named names: Set<String>, sites count: Int
    ) throws {
        let coordinatorIDs = Set(trace.stages(of: round).map(\.spanID) + [round.span.spanID])
        let siteSpans = trace.siteSpans(of: round)
        let sites = Set(siteSpans.compactMap(Self.site))
        #expect(sites.count == count, "round \(round.round): spans of \(sites)")
        for site in sites {
            let own = siteSpans.filter { Self.site(of: $0) == site }
            let ownNames = Set(own.map(\.operationName))
            #expect(ownNames == names, "round \(round.round), \(site)")
        }
        for span in siteSpans {
            let parent = span.parentSpanID ?? "none"
            #expect(coordinatorIDs.contains(parent), "\(span.operationName) has no coordinator parent")
            #expect(span.attributes.get("tessera.round") == .int64(Int64(round.round)))
            var keys: [String] = []
            span.attributes.forEach { key, _ in keys.append(key) }
            #expect(Set(keys) == ["tessera.site", "tessera.round"], "\(span.operationName) carries \(keys)")
        }
    }
}

/// The finished spans of a run, sorted into rounds.
private struct RecordedTrace {
    struct Round {
        var round: Int
        var span: FinishedInMemorySpan
    }

    var rounds: [Round]
    var spans: [FinishedInMemorySpan]

    init(_ spans: [FinishedInMemorySpan]) throws {
        self.spans = spans
        rounds = try spans.filter { $0.operationName == "round" }.map { span in
            #expect(span.parentSpanID == nil, "a round span has a parent")
            guard case .int64(let number)? = span.attributes.get("tessera.round") else {
                throw TraceShapeError(description: "a round span without its round number")
            }
            return Round(round: Int(number), span: span)
        }.sorted { $0.round < $1.round }
    }

    func inTrace(of round: Round) -> [FinishedInMemorySpan] {
        spans.filter { $0.traceID == round.span.traceID && $0.spanID != round.span.spanID }
    }

    /// The coordinator's spans of the round (those without a site).
    func stages(of round: Round) -> [FinishedInMemorySpan] {
        inTrace(of: round).filter { $0.attributes.get("tessera.site") == nil }
    }

    func siteSpans(of round: Round) -> [FinishedInMemorySpan] {
        inTrace(of: round).filter { $0.attributes.get("tessera.site") != nil }
    }

    /// Spans in no round's trace.
    var orphans: [FinishedInMemorySpan] {
        let traces = Set(rounds.map(\.span.traceID))
        return spans.filter { !traces.contains($0.traceID) }
    }
}

private struct TraceShapeError: Error, CustomStringConvertible {
    var description: String
}
