import GRPCCore
import InMemoryTracing
import TesseraTesting
import TesseraTransport
import Testing
import Tracing

@Suite struct TraceparentTests {
    static let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test func readsAndWritesTheVersion00Form() throws {
        let parent = try #require(Traceparent(parsing: Self.valid))
        #expect(parent.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(parent.spanID == "00f067aa0ba902b7")
        #expect(parent.flags == 1)
        #expect(parent.encoded == Self.valid)
        let unsampled = try #require(Traceparent(parsing: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-a0"))
        #expect(unsampled.flags == 0xa0)
        #expect(unsampled.encoded.hasSuffix("-a0"))
        #expect(Traceparent(traceID: parent.traceID, spanID: parent.spanID)?.encoded == Self.valid)
    }

    @Test(arguments: [
        "",
        "00",
        // Uppercase hex.
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
        // Other versions, including the reserved ff.
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        // All-zero ids.
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        // Wrong lengths, extra fields, wrong separators, non-hex.
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\u{e9}",
    ])
    func refusesEverythingElse(_ text: String) {
        #expect(Traceparent(parsing: text) == nil)
    }

    @Test func refusesAnOversizedValue() {
        let huge = Self.valid + String(repeating: "0", count: 1 << 20)
        #expect(Traceparent(parsing: huge) == nil)
        #expect(Traceparent(traceID: String(repeating: "a", count: 33), spanID: "00f067aa0ba902b7") == nil)
    }

    @Test func aMalformedValueStartsANewTraceInsteadOfFailing() throws {
        let tracer = W3CInMemoryTracer()
        for bad in ["00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", String(repeating: "x", count: 4096), ""]
        {
            let context = Traceparent.context(continuing: bad, tracer: tracer)
            tracer.startSpan("fetch", context: context).end()
        }
        let continued = Traceparent.context(continuing: Self.valid, tracer: tracer)
        tracer.startSpan("upload", context: continued).end()
        let spans = tracer.finishedSpans
        #expect(spans.filter { $0.operationName == "fetch" }.allSatisfy { $0.parentSpanID == nil })
        let upload = try #require(spans.first { $0.operationName == "upload" })
        #expect(upload.traceID == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(upload.parentSpanID == "00f067aa0ba902b7")
        // What the tracer writes back for a span is the same form.
        let written = try #require(Traceparent.of(upload.context, tracer: tracer))
        #expect(written.traceID == upload.traceID && written.spanID == upload.spanID)
    }

    @Test func grpcMetadataCarriesOnlyAValidTraceparent() throws {
        var metadata: Metadata = ["authorization": "secret"]
        let injector = MetadataTraceInjector()
        injector.inject("congo=t61rcWkgMzE", forKey: "tracestate", into: &metadata)
        injector.inject(Self.valid.uppercased(), forKey: "traceparent", into: &metadata)
        #expect(metadata[stringValues: "tracestate"].first(where: { _ in true }) == nil)
        #expect(metadata.traceparent == nil)
        injector.inject(Self.valid, forKey: "traceparent", into: &metadata)
        #expect(metadata.traceparent?.encoded == Self.valid)

        let extractor = MetadataTraceExtractor()
        var forged: Metadata = ["traceparent": "00-\(String(repeating: "0", count: 32))-00f067aa0ba902b7-01"]
        #expect(extractor.extract(key: "traceparent", from: forged) == nil)
        forged.replaceOrAddString(Self.valid, forKey: "traceparent")
        #expect(extractor.extract(key: "traceparent", from: forged) == Self.valid)
        #expect(extractor.extract(key: "authorization", from: metadata) == nil)
    }

    @Test func exportIsOffUnlessAnEndpointIsGiven() throws {
        #expect(try OTLPTracing.endpoint(flag: nil, environment: [:]) == nil)
        #expect(try OTLPTracing.endpoint(flag: nil, environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": ""]) == nil)
        #expect(
            try OTLPTracing.endpoint(flag: nil, environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"])
                == "http://127.0.0.1:4317")
        #expect(
            try OTLPTracing.endpoint(
                flag: "https://collector:4317", environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"])
                == "https://collector:4317")
        let disabled = ["OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_SDK_DISABLED": "true"]
        #expect(try OTLPTracing.endpoint(flag: nil, environment: disabled) == nil)
        #expect(throws: TesseraRuntimeError.self) { try OTLPTracing.endpoint(flag: "127.0.0.1:4317", environment: [:]) }
        #expect(throws: TesseraRuntimeError.self) {
            try OTLPTracing.endpoint(flag: nil, environment: ["OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://x"])
        }
    }

    @Test func withExportOffTheProgramGetsNoTracer() async throws {
        let tracer = try await OTLPTracing.withTracer(
            endpointFlag: nil, serviceName: "test", environment: [:], logger: testLogger()
        ) {
            tracer in tracer == nil
        }
        #expect(tracer)
    }
}
