public import InMemoryTracing
import Synchronization
import TesseraTransport
public import Tracing

/// swift-distributed-tracing's `InMemoryTracer` speaking W3C `traceparent`: the ids are
/// lowercase hex of W3C lengths, and inject/extract write and read one `traceparent` instead of
/// the in-memory tracer's own keys. So the coordinator and the sites of a test federation can
/// share one recording tracer while the round's context still crosses the wire in the envelope
/// header, exactly as it does with an OTLP tracer.
public struct W3CInMemoryTracer: Tracer {
    public let recorder: InMemoryTracer

    public init() {
        // Sequential ids (never zero), distinct between trace and span ids.
        let next = IDCounter()
        let counter: @Sendable () -> UInt64 = {
            next.value.withLock {
                $0 += 1; return $0
            }
        }
        recorder = InMemoryTracer(
            idGenerator: InMemoryTracer.IDGenerator(
                nextTraceID: { Self.hex(counter(), digits: 32) }, nextSpanID: { Self.hex(counter(), digits: 16) }),
            recordInjections: false, recordExtractions: false)
    }

    /// Every span ended so far.
    public var finishedSpans: [FinishedInMemorySpan] { recorder.finishedSpans }

    /// The spans started and not yet ended.
    public var activeSpans: [InMemorySpan] { recorder.activeSpans }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> InMemorySpan {
        recorder.startSpan(
            operationName, context: context(), ofKind: kind, at: instant(), function: function, file: fileID,
            line: line)
    }

    public func forceFlush() { recorder.forceFlush() }

    public func inject<Carrier, Inject: Injector>(
        _ context: ServiceContext, into carrier: inout Carrier, using injector: Inject
    ) where Inject.Carrier == Carrier {
        guard let span = context.inMemorySpanContext,
            let parent = Traceparent(traceID: span.traceID, spanID: span.spanID)
        else { return }
        injector.inject(parent.encoded, forKey: Traceparent.key, into: &carrier)
    }

    public func extract<Carrier, Extract: Extractor>(
        _ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract
    ) where Extract.Carrier == Carrier {
        guard let value = extractor.extract(key: Traceparent.key, from: carrier),
            let parent = Traceparent(parsing: value)
        else { return }
        context.inMemorySpanContext = InMemorySpanContext(
            traceID: parent.traceID, spanID: parent.spanID, parentSpanID: nil)
    }

    private final class IDCounter: Sendable {
        let value = Mutex<UInt64>(0)
    }

    private static func hex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: digits - text.count) + text
    }
}
