import Testing

@testable import TesseraCoordinator

/// The admission rules alone: who gets a slot, in what order, and who is stalled.
@Suite struct UploadSlotsTests {
    @Test func slotsAreGrantedUpToTheCapacityAndRecordTheirPeak() {
        var slots = UploadSlots(capacity: 2)
        let result1 = slots.acquire(1, now: .zero)
        #expect(result1)
        let result2 = slots.acquire(1, now: .zero)
        #expect(result2, "a holder asking again keeps its slot")
        let result3 = slots.acquire(2, now: .zero)
        #expect(result3)
        let result4 = slots.acquire(3, now: .zero)
        #expect(!result4)
        #expect(slots.inUse == 2)
        #expect(slots.peak == 2)
        let result5 = slots.release(1, now: .seconds(1))
        #expect(result5.isEmpty)
        #expect(slots.inUse == 1)
        #expect(slots.peak == 2)
        #expect(UploadSlots(capacity: 0).capacity == 1, "at least one upload can always run")
    }

    /// A freed slot goes to a waiting reader (its upload is already on its way) before a
    /// held-back request, and each queue is served in arrival order.
    @Test func waitingReadersComeBeforeHeldBackRequestsInArrivalOrder() {
        var slots = UploadSlots(capacity: 1)
        let result6 = slots.acquire(1, now: .zero)
        #expect(result6)
        slots.deferRequest(2, round: 1)
        slots.waitAsReader(3)
        slots.deferRequest(4, round: 1)
        slots.waitAsReader(5)
        var order: [UploadSlots.Grant] = []
        var holder: UInt64 = 1
        for _ in 0..<4 {
            let grants = slots.release(holder, now: .seconds(1))
            #expect(grants.count == 1)
            order += grants
            switch grants[0] {
            case .reader(let id), .request(let id): holder = id
            }
        }
        #expect(order == [.reader(3), .reader(5), .request(2), .request(4)])
        let result7 = slots.release(holder, now: .seconds(2))
        #expect(result7.isEmpty)
    }

    /// A stream that closes leaves both queues, its waiting reader is woken without a slot, and
    /// a slot it held passes on.
    @Test func aClosedStreamLeavesTheQueuesAndPassesItsSlotOn() {
        var slots = UploadSlots(capacity: 1)
        let result8 = slots.acquire(1, now: .zero)
        #expect(result8)
        slots.waitAsReader(2)
        slots.deferRequest(3, round: 4)
        let waiting = slots.remove(2, now: .seconds(1))
        #expect(waiting.woken)
        #expect(waiting.grants.isEmpty)
        let holder = slots.remove(1, now: .seconds(1))
        #expect(!holder.woken)
        #expect(holder.grants == [.request(3)])
        #expect(slots.holds(3))
    }

    /// Requests of a round that ended, or of a stream given a new task, are dropped.
    @Test func heldBackRequestsDieWithTheirRound() {
        var slots = UploadSlots(capacity: 1)
        let result9 = slots.acquire(1, now: .zero)
        #expect(result9)
        slots.deferRequest(2, round: 1)
        slots.deferRequest(3, round: 2)
        slots.deferRequest(4, round: 2)
        slots.dropRequests(ofRound: 1)
        slots.dropRequests(of: 4)
        #expect(slots.deferredRequests.map(\.id) == [3])
        let result10 = slots.release(1, now: .zero)
        #expect(result10 == [.request(3)])
    }

    /// A holder is judged by the bytes it moved over the last window, once it has held its slot
    /// for a whole window: a chunk now and then is not enough, a steady upload is. Progress is
    /// counted only for a stream that holds a slot.
    @Test func aHolderIsTooSlowWhenItsLastWindowCarriedLessThanTheRate() {
        let progress = TransferProgress(minimumBytesPerSecond: 1000, window: .seconds(30))
        var slots = UploadSlots(capacity: 3, progress: progress)
        for id: UInt64 in [1, 2, 3] {
            let granted = slots.acquire(id, now: .zero)
            #expect(granted)
        }
        #expect(!slots.hasOpenedUpload(1))
        // 1 drips a 256-byte chunk every 10 s; 2 sends 10 kB every 10 s; 3 sends nothing.
        func send(from: Int, through: Int) {
            for second in stride(from: from, through: through, by: 10) {
                slots.recordProgress(1, bytes: 256, now: .seconds(second))
                slots.recordProgress(2, bytes: 10_000, now: .seconds(second))
            }
        }
        send(from: 0, through: 20)
        #expect(slots.hasOpenedUpload(1))
        #expect(!slots.hasOpenedUpload(3))
        let early = slots.slowHolders(now: .seconds(30) - .milliseconds(1))
        #expect(early.isEmpty, "no holder is judged before it has had a whole window")
        send(from: 30, through: 30)
        let judged = slots.slowHolders(now: .seconds(30)).map(\.id)
        #expect(judged == [1, 3])
        send(from: 40, through: 60)
        let later = slots.slowHolders(now: .seconds(60)).map(\.id)
        #expect(later == [1, 3])
        let verdict = slots.slowHolders(now: .seconds(60))[0].verdict
        #expect(verdict.contains("768 bytes in the last 30"), "\(verdict)")
        slots.recordProgress(4, bytes: 1 << 20, now: .seconds(1))
        #expect(!slots.holds(4), "progress of a stream without a slot grants nothing")
    }
}
