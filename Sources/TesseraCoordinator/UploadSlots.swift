/// Upload-slot admission: at most ``capacity`` uploads (masked inputs or plaintext updates) are
/// assembled at once, so what the coordinator buffers is bounded by the slots, not by the number
/// of participants.
///
/// A stream gets a slot in one of two ways: its reader opens an upload (it then waits, unread,
/// in ``waitingReaders`` until a slot frees), or the coordinator wants to ask it for its masked
/// input (the request waits in ``deferredRequests``, so nothing of that upload is in flight
/// before its slot is granted). A freed slot goes to a waiting reader first (its upload is
/// already on its way), then to the oldest held-back request. A holder is judged by the bytes it
/// moves (see ``ProgressMeter``): one too slow over a whole window is reported by
/// ``slowHolders(now:)``, so a site that drips a chunk now and then cannot keep a slot.
struct UploadSlots {
    /// Who a freed slot went to.
    enum Grant: Equatable {
        /// A reader waiting to go on with its upload: resume it.
        case reader(UInt64)
        /// A held-back masked-input request: send it now.
        case request(UInt64)
    }

    private struct Holder {
        /// The upload's bytes since the slot was granted.
        var meter: ProgressMeter
        /// Whether anything but heartbeats arrived since the slot was granted.
        var opened = false
    }

    let capacity: Int
    /// The rate a holder must keep.
    let progress: TransferProgress
    private var holders: [UInt64: Holder] = [:]
    private(set) var waitingReaders: [UInt64] = []
    private(set) var deferredRequests: [(id: UInt64, round: Int)] = []
    /// The most slots held at once.
    private(set) var peak = 0

    init(capacity: Int, progress: TransferProgress = TransferProgress()) {
        self.capacity = max(1, capacity)
        self.progress = progress
    }

    var inUse: Int { holders.count }
    private var isFull: Bool { holders.count >= capacity }

    func holds(_ id: UInt64) -> Bool { holders[id] != nil }

    /// Whether stream `id` holds a slot whose upload has begun.
    func hasOpenedUpload(_ id: UInt64) -> Bool { holders[id]?.opened == true }

    /// Grants a slot to stream `id` if one is free (or it holds one already).
    mutating func acquire(_ id: UInt64, now: Duration) -> Bool {
        if holders[id] != nil { return true }
        guard !isFull else { return false }
        grant(id, now: now)
        return true
    }

    /// Queues the reader of stream `id` until a slot frees.
    mutating func waitAsReader(_ id: UInt64) {
        waitingReaders.append(id)
    }

    /// Holds back the masked-input request of stream `id` (for `round`) until a slot frees.
    mutating func deferRequest(_ id: UInt64, round: Int) {
        deferredRequests.append((id, round))
    }

    /// An envelope other than a heartbeat, carrying `bytes` of upload, arrived on stream `id`:
    /// if it holds a slot, its upload has begun and moved that much.
    mutating func recordProgress(_ id: UInt64, bytes: Int, now: Duration) {
        guard holders[id] != nil else { return }
        holders[id]!.meter.record(bytes, now: now)
        holders[id]!.opened = true
    }

    /// Gives up the slot of stream `id`, if it holds one, and passes the freed slots on.
    mutating func release(_ id: UInt64, now: Duration) -> [Grant] {
        guard holders.removeValue(forKey: id) != nil else { return [] }
        return grantFreedSlots(now: now)
    }

    /// Stream `id` closed: it leaves both queues and its slot passes on. `woken` says whether its
    /// reader was waiting (it must be resumed, without a slot).
    mutating func remove(_ id: UInt64, now: Duration) -> (woken: Bool, grants: [Grant]) {
        let woken = waitingReaders.contains(id)
        waitingReaders.removeAll { $0 == id }
        deferredRequests.removeAll { $0.id == id }
        return (woken, release(id, now: now))
    }

    /// Drops the held-back requests of stream `id` (a new round, or its part in this one is over).
    mutating func dropRequests(of id: UInt64) {
        deferredRequests.removeAll { $0.id == id }
    }

    /// Drops the held-back requests of `round` (it ended).
    mutating func dropRequests(ofRound round: Int) {
        deferredRequests.removeAll { $0.round == round }
    }

    /// The holders whose upload moved too little over the last window, with why.
    func slowHolders(now: Duration) -> [(id: UInt64, verdict: String)] {
        holders.filter { $0.value.meter.isTooSlow(now: now) }.sorted { $0.key < $1.key }.map {
            ($0.key, $0.value.meter.verdict(now: now))
        }
    }

    private mutating func grant(_ id: UInt64, now: Duration) {
        holders[id] = Holder(meter: progress.meter(startingAt: now))
        peak = max(peak, holders.count)
    }

    private mutating func grantFreedSlots(now: Duration) -> [Grant] {
        var grants: [Grant] = []
        while !isFull {
            if !waitingReaders.isEmpty {
                let id = waitingReaders.removeFirst()
                grant(id, now: now)
                grants.append(.reader(id))
            } else if !deferredRequests.isEmpty {
                let id = deferredRequests.removeFirst().id
                grant(id, now: now)
                grants.append(.request(id))
            } else {
                break
            }
        }
        return grants
    }
}
