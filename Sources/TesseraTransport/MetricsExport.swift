public import CoreMetrics
import Foundation
public import Prometheus
import Synchronization

/// One process's metrics: the swift-metrics factory its services record into and the
/// Prometheus text (`GET /metrics`) they are read back as.
///
/// Each process (and each test) makes its own: the services take the ``factory`` explicitly
/// instead of the global `MetricsSystem`, so two coordinators in one test process never share
/// a counter. Names follow Prometheus conventions (base units, `_total` counters), and no
/// label takes a per-round, per-site or free-text value, so the number of series stays bounded
/// whatever runs.
public final class MetricsExport: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: any MetricsFactory
    /// Run before each scrape, to set gauges that are cheaper to read at scrape time (from the
    /// state) than to keep current on every change.
    private let beforeScrape = Mutex<[@Sendable () -> Void]>([])

    /// The buckets of every duration histogram: from 5 ms (a plaintext stage on loopback) to 30
    /// minutes (a whole round of a large federation).
    public static let durationBuckets: [Duration] = [
        .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60), .seconds(120),
        .seconds(300), .seconds(600), .seconds(1800),
    ]

    /// - Parameter program: the binary's name, in `tessera_build_info`.
    public init(program: String) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.durationBuckets
        self.registry = registry
        self.factory = factory
        Gauge(
            label: "tessera_build_info",
            dimensions: [("program", program), ("version", BuildInfo.version), ("swift", BuildInfo.swift)],
            factory: factory
        ).record(1)
    }

    /// Adds work to run before every scrape.
    public func onScrape(_ refresh: @escaping @Sendable () -> Void) {
        beforeScrape.withLock { $0.append(refresh) }
    }

    /// The text exposition format (version 0.0.4) of every metric, after the scrape hooks ran.
    public func exposition() -> String {
        for refresh in beforeScrape.withLock({ $0 }) { refresh() }
        return registry.emitToString()
    }
}

/// What this build of Tessera is, for `tessera_build_info` and `--version`.
public enum BuildInfo {
    public static let version = "0.17.0"
    #if compiler(>=6.3)
    public static let swift = "6.3"
    #else
    public static let swift = "6.x"
    #endif
}
