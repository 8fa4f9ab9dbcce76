import Foundation
import TesseraTesting
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `GET /metrics` of the real binaries while a secure federation runs: the coordinator's and a
/// site's HTTP ports answer with the Prometheus text format, and what they count is what ran.
@Suite struct MetricsEndpointTests {
    /// The port of the first line of `log` that says `marker` HOST:PORT (and ends with `suffix`).
    static func port(in log: String, after marker: String, endingWith suffix: String = "") -> Int? {
        guard
            let line = log.split(separator: "\n").first(where: {
                $0.contains(marker) && $0.hasSuffix(suffix) && !$0.contains("API")
            }),
            let address = line.split(separator: marker).last?.split(separator: " ").first,
            let port = address.split(separator: ":").last
        else { return nil }
        return Int(port)
    }

    static func scrape(_ port: Int) async throws -> (contentType: String?, body: PrometheusText) {
        let url = try #require(URL(string: "http://127.0.0.1:\(port)/metrics"))
        let (data, response) = try await URLSession.shared.data(from: url)
        let http = try #require(response as? HTTPURLResponse)
        #expect(http.statusCode == 200)
        return (
            http.value(forHTTPHeaderField: "Content-Type"), try PrometheusText(String(decoding: data, as: UTF8.self))
        )
    }

    @Test func bothBinariesServeWhatTheyCounted() async throws {
        let coordinatorBinary = try #require(
            ProcessSupport.binary("tessera-coordinator"), "build the executables first (swift build)")
        let participantBinary = try #require(ProcessSupport.binary("tessera-participant"))
        let root = try ProcessSupport.temporaryRoot("tessera-metrics")
        defer { try? FileManager.default.removeItem(at: root) }
        let sites = ["site-a", "site-b", "site-c"]
        let rounds = 200
        let experiment = try ProcessSupport.prepareFederation(
            at: root, name: "scraped", seed: 5, rounds: rounds, sites: sites, minimum: 3, evaluateEvery: 1, csvSeed: 9)
        let coordinator = try LoggedProcess(
            name: "coordinator", executable: coordinatorBinary,
            arguments: [
                "--experiment", experiment.path, "--listen", "127.0.0.1:0", "--tls-dir",
                root.appendingPathComponent("coordinator").path, "--trust", root.appendingPathComponent("trust").path,
                "--results", root.appendingPathComponent("results").path, "--state",
                root.appendingPathComponent("state").path, "--http", "127.0.0.1:0",
            ],
            log: root.appendingPathComponent("coordinator.log"))
        defer { coordinator.stop() }
        let started = await coordinator.waitFor(within: 60) { log, exited in
            exited
                || (Self.port(in: log, after: "listening on ", endingWith: "(mTLS)") != nil
                    && Self.port(in: log, after: "HTTP listening on ") != nil)
        }
        try #require(started && coordinator.isRunning, "\(coordinator.text)")
        let grpcPort = try #require(Self.port(in: coordinator.text, after: "listening on ", endingWith: "(mTLS)"))
        let coordinatorHTTP = try #require(Self.port(in: coordinator.text, after: "HTTP listening on "))
        var participants: [LoggedProcess] = []
        defer { for participant in participants { participant.stop() } }
        for site in sites {
            let file = root.appendingPathComponent("\(site).yaml")
            try ProcessSupport.writeSiteFile(to: file, site: site, coordinatorPort: grpcPort, experiment: "scraped")
            participants.append(
                try LoggedProcess(
                    name: site, executable: participantBinary,
                    arguments: ["--config", file.path, "--http", "127.0.0.1:0"],
                    log: root.appendingPathComponent("\(site).log")))
        }
        // Two rounds completed (and the site's third session step began): the counts are past them.
        let twoRounds = await coordinator.waitFor(within: 120) { log, exited in exited || log.contains("round 3: ") }
        try #require(twoRounds && coordinator.isRunning, "\(coordinator.text)")
        let (contentType, metrics) = try await Self.scrape(coordinatorHTTP)
        #expect(contentType == "text/plain; version=0.0.4; charset=utf-8")
        let completed = try #require(metrics.value("tessera_rounds_total", ["outcome": "completed"]))
        #expect(completed >= 2)
        #expect(metrics.value("tessera_rounds_total", ["outcome": "failed"]) == 0)
        #expect(metrics.value("tessera_participants", ["state": "connected"]) == 3)
        #expect(metrics.value("tessera_sites", ["health": "healthy"]) == 3)
        #expect((metrics.value("tessera_stage_duration_seconds_count", ["stage": "unmasking"]) ?? 0) >= 2)
        #expect((metrics.value("tessera_received_bytes_total", ["kind": "update"]) ?? 0) > 0)
        #expect(metrics.value("tessera_build_info", ["program": "tessera-coordinator"]) == 1)

        let siteHTTP = try #require(
            Self.port(in: participants[0].text, after: "HTTP listening on "), "\(participants[0].text)")
        let (_, site) = try await Self.scrape(siteHTTP)
        #expect((site.value("tessera_participant_rounds_joined_total") ?? 0) >= 2)
        #expect((site.value("tessera_participant_sent_bytes_total", ["kind": "update"]) ?? 0) > 0)
        #expect(site.value("tessera_participant_connected") == 1)
        #expect(site.value("tessera_build_info", ["program": "tessera-participant"]) == 1)
    }
}
