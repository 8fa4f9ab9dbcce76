public import Foundation
public import Logging

/// Loggers for the executables (which keep no logging code of their own).
public enum RuntimeLogging {
    /// How log lines are written.
    public enum Format: String, Sendable, CaseIterable {
        /// Readable lines (swift-log's stream handler): the default.
        case text
        /// One JSON object per line, for a log collector (``JSONLogHandler``).
        case json
    }

    /// The `--log-format` value `text`; `nil` for anything else (the command says what it accepts).
    public static func format(named text: String) -> Format? { Format(rawValue: text) }

    /// The help of every executable's `--log-format`.
    public static let formatHelp =
        "How log lines are written to standard error: text (readable, the default) or json (one JSON object per line, for a log collector)."

    /// A logger writing to standard error in `format`.
    public static func logger(label: String, verbose: Bool = false, format: Format = .text) -> Logger {
        var logger =
            switch format {
            case .text: Logger(label: label) { StreamLogHandler.standardError(label: $0) }
            case .json: Logger(label: label) { JSONLogHandler(label: $0, sink: .standardError) }
            }
        logger.logLevel = verbose ? .debug : .info
        return logger
    }
}

/// Writes each record as one JSON object on one line:
///
///     {"timestamp":"2026-12-05T11:02:03.456Z","level":"info","label":"tessera.coordinator",
///      "message":"round 3: …","experiment":"quickstart","round":"3","site":"site-1"}
///
/// The logger's and the record's metadata are flattened into the object as strings (a record's
/// value wins); `timestamp`, `level`, `label` and `message` are reserved and never overwritten
/// by metadata. Keys are sorted, so two runs' lines compare. Each line is written with one
/// `write` call under a lock, so lines from concurrent tasks never interleave.
public struct JSONLogHandler: LogHandler {
    /// Where lines go.
    public struct Sink: Sendable {
        let write: @Sendable (Data) -> Void

        public init(write: @escaping @Sendable (Data) -> Void) { self.write = write }

        /// The process's standard error.
        public static let standardError = Sink { data in
            standardErrorLock.withLock { FileHandle.standardError.write(data) }
        }
    }

    private static let standardErrorLock = NSLock()
    static let reservedKeys: Set<String> = ["timestamp", "level", "label", "message"]

    public let label: String
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    private let sink: Sink

    public init(label: String, sink: Sink) {
        self.label = label
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 })
        where !Self.reservedKeys.contains(key) {
            fields[key] = "\(value)"
        }
        fields["timestamp"] = Self.timestamp(Date())
        fields["level"] = event.level.rawValue
        fields["label"] = label
        fields["message"] = event.message.description
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var line = (try? encoder.encode(fields)) ?? Data(#"{"message":"unencodable log record"}"#.utf8)
        line.append(0x0A)
        sink.write(line)
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(_ date: Date) -> String {
        date.formatted(
            Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: TimeZone(identifier: "UTC")!))
    }
}
