public import Logging

/// Loggers for the executables (which keep no logging code of their own).
public enum RuntimeLogging {
    /// A logger writing readable lines to standard error.
    public static func logger(label: String, verbose: Bool = false) -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = verbose ? .debug : .info
        return logger
    }
}
