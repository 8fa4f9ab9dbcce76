import Foundation
import TesseraCoordinator
import TesseraFederation
import TesseraParticipant
import TesseraTesting
import TesseraTransport
import Testing

/// Prometheus metrics of a real federation (gRPC's in-process transport): what the coordinator
/// and each site count, read back through the text exposition a scrape of `/metrics` returns.
@Suite struct MetricsTests {
    /// Runs `yaml` with the coordinator and every site counting into exports of their own;
    /// returns the outcome and the parsed expositions.
    static func run(
        _ yaml: String
    ) async throws -> (
        outcome: CoordinatorService.Outcome, coordinator: PrometheusText, sites: [PrometheusText]
    ) {
        let prepared = try PreparedExperiment(yaml: yaml)
        let export = MetricsExport(program: "tessera-coordinator")
        var configuration = CoordinatorService.Configuration()
        configuration.metrics = CoordinatorMetrics(factory: export.factory)
        let agents = try prepared.agents()
        var siteExports: [SiteID: MetricsExport] = [:]
        for agent in agents { siteExports[agent.site] = MetricsExport(program: "tessera-participant") }
        let counters = siteExports.mapValues { ParticipantMetrics(factory: $0.factory) }
        let outcome = try await InProcessFederation.run(
            plan: prepared.plan, initialModel: prepared.initialModel, strategy: try prepared.config.makeStrategy(),
            participants: agents, configuration: configuration,
            configure: { site, client in client.metrics = counters[site] }, logger: testLogger())
        let sites = try agents.map { try PrometheusText(siteExports[$0.site]!.exposition()) }
        return (outcome, try PrometheusText(export.exposition()), sites)
    }

    @Test func aSecureFederationIsCountedAndItsExpositionParses() async throws {
        let (outcome, metrics, sites) = try await Self.run(
            syntheticYAML(name: "metrics", participants: 3, rounds: 2, secure: true, evaluateEvery: 1))
        #expect(outcome.completedRounds == 2)
        #expect(metrics.value("tessera_rounds_total", ["outcome": "completed"]) == 2)
        #expect(metrics.value("tessera_rounds_total", ["outcome": "failed"]) == 0)
        #expect(metrics.value("tessera_round_duration_seconds_count", ["outcome": "completed"]) == 2)
        for stage in ["selection", "training", "share_keys", "masked_input", "unmasking", "aggregation"] {
            #expect(metrics.value("tessera_stage_duration_seconds_count", ["stage": stage]) == 2, "\(stage)")
        }
        #expect(metrics.value("tessera_secagg_unmasking_seconds_count") == 2)
        #expect(metrics.value("tessera_round") == 2)
        #expect(metrics.value("tessera_dropouts_total", ["stage": "training"]) == 0)
        // Two rounds of three masked inputs of at least one 4-byte word per parameter.
        let parameters = Double(outcome.finalModel.count)
        let updates = try #require(metrics.value("tessera_received_bytes_total", ["kind": "update"]))
        #expect(updates >= 2 * 3 * 4 * parameters)
        let models = try #require(metrics.value("tessera_sent_bytes_total", ["kind": "model"]))
        #expect(models >= 2 * 3 * 4 * parameters)
        #expect((metrics.value("tessera_sent_bytes_total", ["kind": "secagg"]) ?? 0) > 0)
        #expect((metrics.value("tessera_received_bytes_total", ["kind": "secagg"]) ?? 0) > 0)
        #expect(metrics.value("tessera_model_fetches_in_flight") == 0)
        let accuracy = try #require(metrics.value("tessera_model_metric", ["metric": "accuracy", "source": "sites"]))
        #expect(accuracy == outcome.records.last?.evalAccuracy)
        #expect(metrics.value("tessera_build_info", ["program": "tessera-coordinator"]) == 1)
        // Conventions: one prefix, every family typed, counters end in `_total`.
        for sample in metrics.samples { #expect(sample.name.hasPrefix("tessera_"), "\(sample.name)") }
        for (family, type) in metrics.types where type == "counter" {
            #expect(family.hasSuffix("_total"), "\(family)")
        }
        for site in sites {
            #expect(site.value("tessera_participant_rounds_joined_total") == 2)
            #expect(site.value("tessera_participant_evaluations_total") == 2)
            #expect(site.value("tessera_participant_training_seconds_count") == 2)
            #expect((site.value("tessera_participant_sent_bytes_total", ["kind": "update"]) ?? 0) >= 2 * 4 * parameters)
            #expect((site.value("tessera_participant_received_bytes_total", ["kind": "model"]) ?? 0) >= 4 * parameters)
            #expect(site.value("tessera_participant_refusals_total", ["reason": "tooManyParameters"]) == 0)
            #expect(site.value("tessera_participant_sessions_total") == 1)
        }
    }

    @Test func theSeriesDoNotGrowWithRoundsOrSites() async throws {
        let small = try await Self.run(
            syntheticYAML(name: "small", participants: 3, rounds: 1, secure: true, evaluateEvery: 1))
        let large = try await Self.run(
            syntheticYAML(name: "large", participants: 5, rounds: 3, secure: true, evaluateEvery: 1))
        #expect(large.outcome.completedRounds == 3)
        #expect(small.coordinator.series == large.coordinator.series)
        #expect(small.sites[0].series == large.sites[4].series)
    }

    @Test func aRefusedRoundCountsItsDropoutsAndTheSitesRefusalsByRule() async throws {
        let yaml = """
            name: refused
            seed: 3
            rounds: 2
            participants: 3
            model: {preset: logistic_regression}
            dataset: {kind: synthetic_iid, max_samples_per_participant: 100, test_fraction: 0.2}
            partitioning: {scheme: natural}
            cohort: {fraction: 1.0, minimum: 3}
            strategy: {name: fedavg}
            local_training: {epochs: 1, batch_size: 10, optimizer: sgd, learning_rate: 0.1}
            secure_aggregation: {enabled: true}
            evaluation: {every: 1}
            site_policy: {max_parameters: 10}
            """
        let (outcome, metrics, sites) = try await Self.run(yaml)
        #expect(outcome.completedRounds == 0)
        #expect(metrics.value("tessera_rounds_total", ["outcome": "failed"]) == 2)
        #expect(metrics.value("tessera_dropouts_total", ["stage": "training"]) == 6)
        for site in sites {
            #expect(site.value("tessera_participant_refusals_total", ["reason": "tooManyParameters"]) == 2)
            #expect(site.value("tessera_participant_rounds_joined_total") == 0)
        }
    }

    @Test func theReaderRefusesWhatPrometheusWouldRefuse() {
        #expect(throws: PrometheusText.FormatError.self) { try PrometheusText("tessera_x{a=\"1\" 2") }
        #expect(throws: PrometheusText.FormatError.self) { try PrometheusText("9bad 1") }
        #expect(throws: PrometheusText.FormatError.self) { try PrometheusText("tessera_x one") }
        #expect(throws: PrometheusText.FormatError.self) {
            try PrometheusText("# TYPE tessera_x counter\n# TYPE tessera_x gauge")
        }
        let parsed = try? PrometheusText("# TYPE t counter\nt{a=\"x\\\"y\"} 3 1700000000")
        #expect(parsed?.value("t", ["a": "x\"y"]) == 3)
    }
}
