import Foundation
import Synchronization
import TesseraFederation

/// One live progress line at the bottom of a terminal (``RoundProgress``): round lines update
/// it in place, and a round's summary and any other line are printed above it and stay.
final class LiveProgress: Sendable {
    private let state: Mutex<RoundProgress>
    private let started = Date()

    init(totalRounds: Int) {
        state = Mutex(RoundProgress(totalRounds: totalRounds))
    }

    /// Takes one progress line. A round's summary is printed; another round line only moves the
    /// live line; any other line is printed when `permanent`.
    func show(_ line: String, permanent: Bool) {
        let now = Date().timeIntervalSince(started)
        state.withLock { progress in
            let ends = progress.observe(line, at: now)
            let isRoundLine = RoundProgressLine.isRoundLine(line)
            if ends || (!isRoundLine && permanent) { Self.write("\r\u{1B}[2K" + line + "\n") }
            Self.write("\r\u{1B}[2K" + progress.liveLine(at: now))
        }
    }

    /// Clears the live line (the run is over).
    func end() {
        state.withLock { _ in Self.write("\r\u{1B}[2K") }
    }

    private static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

/// Which progress lines belong to a round.
enum RoundProgressLine {
    static func isRoundLine(_ line: String) -> Bool {
        guard line.hasPrefix("round ") else { return false }
        return line.dropFirst("round ".count).first?.isNumber == true
    }
}
