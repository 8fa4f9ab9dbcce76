import TesseraFederation

/// What the coordinator keeps of the rejections it sends: the most recent ``capacity`` records
/// in full, for the run's outcome, and a count of every rejection per site.
///
/// Memory is the capacity's records plus one counter per site that was ever rejected (sites
/// are the federation's, known by certificate), however many envelopes a site sends.
struct RejectionLedger: Sendable {
    let capacity: Int
    /// A ring: once full, ``next`` is the oldest record, the one to overwrite.
    private var storage: [CoordinatorService.RejectionRecord] = []
    private var next = 0
    /// Every rejection, per site.
    private(set) var totals: [SiteID: Int] = [:]
    /// Every rejection.
    private(set) var total = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    mutating func append(_ record: CoordinatorService.RejectionRecord) {
        total += 1
        totals[record.site, default: 0] += 1
        guard capacity > 0 else { return }
        if storage.count < capacity {
            storage.append(record)
        } else {
            storage[next] = record
            next = (next + 1) % capacity
        }
    }

    /// The records kept, oldest first.
    var records: [CoordinatorService.RejectionRecord] {
        Array(storage[next...] + storage[..<next])
    }

    /// How many records were counted but not kept.
    var dropped: Int { total - storage.count }
}

/// How many rejections one session may draw: at most ``maximum`` within a window of
/// ``window``, counted from the first rejection of the window. The one that reaches the maximum
/// is answered and the session is closed, so a flood costs a bounded amount of work and memory.
struct RejectionBudget: Sendable, Equatable {
    let maximum: Int
    let window: Duration
    private(set) var windowStart: Duration?
    private(set) var count = 0

    init(maximum: Int, window: Duration) {
        self.maximum = max(1, maximum)
        self.window = window
    }

    /// Counts one rejection at `now`; returns `false` once the session has reached the maximum.
    mutating func spend(now: Duration) -> Bool {
        if let start = windowStart, now - start < window {
            count += 1
        } else {
            windowStart = now
            count = 1
        }
        return count < maximum
    }
}

/// Rate-limits a log line that can repeat without bound (a rejection, a refused connection):
/// per key, the first occurrence in an interval is logged in full and the rest only counted;
/// when the interval is over, one line reports the count.
///
/// Memory is one entry per key seen in the current interval; ``flush(now:)`` forgets the keys
/// whose interval ended.
struct BurstLog<Key: Hashable & Sendable>: Sendable {
    struct Burst: Sendable, Equatable {
        /// When the burst's first line was logged.
        var started: Duration
        /// Occurrences since then that were not logged.
        var suppressed = 0
    }

    /// What a burst that ended left unlogged.
    struct Summary: Sendable, Equatable {
        var key: Key
        var suppressed: Int
        var interval: Duration
    }

    let interval: Duration
    private(set) var bursts: [Key: Burst] = [:]

    init(interval: Duration) {
        self.interval = interval
    }

    /// One occurrence of `key` at `now`: `log` says whether to log it in full; `ended` is the
    /// summary of the key's previous burst if it ended with occurrences unlogged.
    mutating func record(_ key: Key, now: Duration) -> (log: Bool, ended: Summary?) {
        if let burst = bursts[key], now - burst.started < interval {
            bursts[key]!.suppressed += 1
            return (false, nil)
        }
        let ended = bursts[key].flatMap { summary(key, $0) }
        bursts[key] = Burst(started: now)
        return (true, ended)
    }

    /// The bursts whose interval is over at `now`, forgotten; those with unlogged occurrences
    /// are returned to be reported.
    mutating func flush(now: Duration) -> [Summary] {
        let over = bursts.filter { now - $0.value.started >= interval }
        for key in over.keys { bursts[key] = nil }
        return over.compactMap { summary($0.key, $0.value) }
    }

    private func summary(_ key: Key, _ burst: Burst) -> Summary? {
        burst.suppressed > 0 ? Summary(key: key, suppressed: burst.suppressed, interval: interval) : nil
    }
}
