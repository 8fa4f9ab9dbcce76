public import GRPCCore
public import Tracing

/// A W3C trace context `traceparent` value, version 00 only:
/// `00-<32 lowercase hex trace id>-<16 lowercase hex parent id>-<2 lowercase hex flags>`.
///
/// It is how a round's trace crosses from the coordinator to a site: in the envelope header of
/// the round's messages, and in the metadata of a model fetch. Parsing is strict and bounded on
/// purpose: the value comes from the network, so anything but exactly that 55-character form
/// (another version, uppercase hex, an all-zero id, extra fields, any other length) is not a
/// trace context and is ignored, never an error that could break a round.
public struct Traceparent: Sendable, Hashable, CustomStringConvertible {
    /// The header (and metadata key) that carries the value.
    public static let key = "traceparent"
    /// The length of every value this type reads or writes.
    public static let length = 55

    /// 32 lowercase hex digits, not all zero.
    public let traceID: String
    /// 16 lowercase hex digits, not all zero.
    public let spanID: String
    /// The trace flags (bit 0: sampled).
    public let flags: UInt8

    /// `nil` unless `traceID` and `spanID` are lowercase hex of the right lengths, not all zero.
    public init?(traceID: String, spanID: String, flags: UInt8 = 1) {
        guard Self.isID(traceID.utf8, length: 32), Self.isID(spanID.utf8, length: 16) else { return nil }
        self.traceID = traceID
        self.spanID = spanID
        self.flags = flags
    }

    /// Reads `text`; `nil` for anything but a version-00 value as the type describes.
    public init?(parsing text: some StringProtocol) {
        let bytes = Array(text.utf8.prefix(Self.length + 1))
        guard bytes.count == Self.length, bytes[0] == UInt8(ascii: "0"), bytes[1] == UInt8(ascii: "0"),
            bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-"),
            Self.isID(bytes[3..<35], length: 32), Self.isID(bytes[36..<52], length: 16),
            bytes[53...].allSatisfy(Self.isLowerHex)
        else { return nil }
        traceID = String(decoding: bytes[3..<35], as: UTF8.self)
        spanID = String(decoding: bytes[36..<52], as: UTF8.self)
        flags = Self.nibble(bytes[53]) << 4 | Self.nibble(bytes[54])
    }

    /// The value as it travels.
    public var encoded: String {
        let hex = Array("0123456789abcdef".utf8)
        let flagDigits = String(decoding: [hex[Int(flags >> 4)], hex[Int(flags & 0xf)]], as: UTF8.self)
        return "00-\(traceID)-\(spanID)-\(flagDigits)"
    }

    public var description: String { encoded }

    private static func isLowerHex(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
    }

    private static func isID(_ bytes: some Collection<UInt8>, length: Int) -> Bool {
        bytes.count == length && bytes.allSatisfy(isLowerHex) && bytes.contains { $0 != UInt8(ascii: "0") }
    }

    private static func nibble(_ byte: UInt8) -> UInt8 {
        byte <= UInt8(ascii: "9") ? byte - UInt8(ascii: "0") : byte - UInt8(ascii: "a") + 10
    }
}

// MARK: - Propagation through a tracer

extension Traceparent {
    /// The traceparent `tracer` writes for `context`, or `nil` if it writes none (or an invalid
    /// one). Only the `traceparent` key is kept: nothing else of the tracer's (tracestate,
    /// baggage) leaves the process.
    public static func of(_ context: ServiceContext, tracer: any Tracer) -> Traceparent? {
        var carrier = Carrier()
        tracer.inject(context, into: &carrier, using: Carrier.Injector())
        return carrier.value
    }

    /// A context that continues `value` under `tracer`: the top-level context when `value` is
    /// not a valid traceparent (the span started from it is then a new root).
    public static func context(continuing value: String, tracer: any Tracer) -> ServiceContext {
        var context = ServiceContext.topLevel
        guard let parent = Traceparent(parsing: value) else { return context }
        tracer.extract(Carrier(value: parent), into: &context, using: Carrier.Extractor())
        return context
    }

    /// What a tracer injects into and extracts from: one checked traceparent, nothing else.
    public struct Carrier: Sendable {
        public var value: Traceparent?

        public init(value: Traceparent? = nil) { self.value = value }

        /// Keeps the `traceparent` key if its value parses; drops every other key.
        public struct Injector: Tracing.Injector {
            public init() {}
            public func inject(_ value: String, forKey key: String, into carrier: inout Traceparent.Carrier) {
                guard key.lowercased() == Traceparent.key else { return }
                carrier.value = Traceparent(parsing: value)
            }
        }

        public struct Extractor: Tracing.Extractor {
            public init() {}
            public func extract(key: String, from carrier: Traceparent.Carrier) -> String? {
                key.lowercased() == Traceparent.key ? carrier.value?.encoded : nil
            }
        }
    }
}

// MARK: - gRPC metadata

/// Writes a tracer's `traceparent` into gRPC request metadata, and nothing else of its keys.
public struct MetadataTraceInjector: Tracing.Injector {
    public init() {}

    public func inject(_ value: String, forKey key: String, into carrier: inout Metadata) {
        guard key.lowercased() == Traceparent.key, let parent = Traceparent(parsing: value) else { return }
        carrier.replaceOrAddString(parent.encoded, forKey: Traceparent.key)
    }
}

/// Reads a `traceparent` from gRPC metadata, strictly: the first value under the key, and only
/// if it parses (see ``Traceparent``); every other key reads as absent.
public struct MetadataTraceExtractor: Tracing.Extractor {
    public init() {}

    public func extract(key: String, from carrier: Metadata) -> String? {
        guard key.lowercased() == Traceparent.key else { return nil }
        guard let first = carrier[stringValues: Traceparent.key].first(where: { _ in true }) else { return nil }
        return Traceparent(parsing: first)?.encoded
    }
}

extension Metadata {
    /// Adds `parent` under `traceparent`, replacing any value there.
    public mutating func setTraceparent(_ parent: Traceparent) {
        replaceOrAddString(parent.encoded, forKey: Traceparent.key)
    }

    /// The `traceparent` value, if there is one and it parses.
    public var traceparent: Traceparent? {
        MetadataTraceExtractor().extract(key: Traceparent.key, from: self).flatMap { Traceparent(parsing: $0) }
    }
}
