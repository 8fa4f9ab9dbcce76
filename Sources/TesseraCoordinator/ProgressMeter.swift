import TesseraTransport

/// Judges a transfer (an upload holding a slot, a model fetch holding a share of the budget) by
/// its rate: at least ``minimumBytesPerSecond``, averaged over the last ``window``, once it has
/// run for a whole window. A transfer that sends a little now and then (a chunk every 29 s)
/// fails it as surely as one that sends nothing.
///
/// It keeps a few samples of the running byte count, at least ``resolution`` apart except the
/// newest, so its memory is bounded whatever the number of chunks. Coarse samples only ever
/// lend a transfer bytes it sent up to one resolution before the window: the meter errs
/// towards keeping an honest transfer, never towards dropping it.
struct ProgressMeter: Sendable, Equatable {
    struct Sample: Sendable, Equatable {
        var at: Duration
        var total: Int
    }

    let minimumBytesPerSecond: Int
    let window: Duration
    /// When the transfer began (its slot or share was granted).
    let started: Duration
    /// Bytes moved since ``started``.
    private(set) var total = 0
    /// Oldest first: one at or before the start of the window, then the samples in it.
    private(set) var samples: [Sample]

    init(minimumBytesPerSecond: Int, window: Duration, now: Duration) {
        self.minimumBytesPerSecond = max(0, minimumBytesPerSecond)
        self.window = max(window, .nanoseconds(1))
        self.started = now
        self.samples = [Sample(at: now, total: 0)]
    }

    /// How far apart kept samples are at least: an eighth of the window.
    var resolution: Duration { window / 8 }

    /// The bytes a window must carry.
    var requiredBytes: Int {
        Int((Double(minimumBytesPerSecond) * window.inSeconds).rounded(.up))
    }

    /// `bytes` more moved at `now`.
    mutating func record(_ bytes: Int, now: Duration) {
        total += max(0, bytes)
        let sample = Sample(at: now, total: total)
        if samples.count >= 2, now - samples[samples.count - 2].at < resolution {
            samples[samples.count - 1] = sample
        } else {
            samples.append(sample)
        }
        // Keep one sample at or before the window's start.
        while samples.count >= 2, samples[1].at <= now - window { samples.removeFirst() }
    }

    /// The bytes moved in the window that ends at `now` (after `now - window`, up to `now`).
    func bytesInWindow(endingAt now: Duration) -> Int {
        let start = now - window
        let before = samples.last { $0.at <= start }?.total ?? 0
        return total - before
    }

    /// Whether the transfer has run for a whole window and moved less than the rate asks.
    func isTooSlow(now: Duration) -> Bool {
        guard minimumBytesPerSecond > 0, now - started >= window else { return false }
        return bytesInWindow(endingAt: now) < requiredBytes
    }

    /// Why the transfer was ended, for the site and the log.
    func verdict(now: Duration) -> String {
        "it moved \(bytesInWindow(endingAt: now)) bytes in the last \(window); at least \(requiredBytes) (\(minimumBytesPerSecond) bytes/s) are required"
    }
}

/// The rate every upload and model fetch must keep (see ``ProgressMeter``).
public struct TransferProgress: Sendable, Hashable {
    /// Bytes per second, averaged over ``window``; 0 turns the check off.
    public var minimumBytesPerSecond: Int
    public var window: Duration

    public init(minimumBytesPerSecond: Int = 16 << 10, window: Duration = .seconds(30)) {
        self.minimumBytesPerSecond = minimumBytesPerSecond
        self.window = window
    }

    func meter(startingAt now: Duration) -> ProgressMeter {
        ProgressMeter(minimumBytesPerSecond: minimumBytesPerSecond, window: window, now: now)
    }
}

extension CoordinatorLimits {
    /// The rate uploads and model fetches must keep.
    public var transferProgress: TransferProgress {
        TransferProgress(minimumBytesPerSecond: minimumTransferBytesPerSecond, window: transferWindow)
    }
}
