import TesseraFederation
import TesseraTransport
public import Tracing

/// A site's spans in the round's trace: `fetch` (the model), `training` (local training, and the
/// quantization of a weighted secure input), `masking` (the masked input prepared ahead, or a
/// distributed-noise encoding) and `upload` (the masked input or plaintext update, until its
/// last envelope is written to the stream).
///
/// Each is a child of the coordinator's span named by the `traceparent` of the message that
/// asked for the work; a missing or malformed one starts a new trace instead. Spans carry the
/// site and the round, nothing of the site's data (no sample counts, metrics or losses). With
/// no tracer nothing is started, at no cost.
struct SiteTracing: Sendable {
    let tracer: (any Tracer)?
    let site: SiteID

    /// Starts `name` under the coordinator's `traceparent`; `nil` when tracing is off.
    func start(_ name: String, round: Int, continuing traceparent: String) -> (any Span)? {
        guard let tracer else { return nil }
        let span = tracer.startSpan(name, context: Traceparent.context(continuing: traceparent, tracer: tracer))
        span.attributes["tessera.site"] = site
        span.attributes["tessera.round"] = round
        return span
    }

    /// The traceparent a model fetch carries in its request metadata: the fetch span's own
    /// context when the site traces, else the coordinator's value passed on unchanged (if valid).
    func fetchParent(of span: (any Span)?, received traceparent: String) -> Traceparent? {
        if let tracer, let span { return Traceparent.of(span.context, tracer: tracer) }
        return Traceparent(parsing: traceparent)
    }

    /// Runs `body` inside `span` (when there is one), recording a thrown error on it.
    func run<Result>(in span: (any Span)?, _ body: () async throws -> Result) async rethrows -> Result {
        guard let span else { return try await body() }
        defer { span.end() }
        do {
            return try await body()
        } catch {
            span.setStatus(SpanStatus(code: .error, message: "\(type(of: error))"))
            throw error
        }
    }
}
