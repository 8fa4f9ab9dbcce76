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

    /// A holder is stalled once it has made no progress for longer than the timeout: exactly the
    /// timeout is not a stall yet. Progress is counted only once an upload has begun.
    @Test func aHolderIsStalledOnlyAfterMoreThanTheTimeoutWithoutProgress() {
        var slots = UploadSlots(capacity: 2)
        let result11 = slots.acquire(1, now: .zero)
        #expect(result11)
        let result12 = slots.acquire(2, now: .seconds(5))
        #expect(result12)
        #expect(!slots.hasOpenedUpload(1))
        slots.recordProgress(1, now: .seconds(20))
        #expect(slots.hasOpenedUpload(1))
        #expect(slots.stalledHolders(now: .seconds(35), timeout: .seconds(30)).isEmpty)
        #expect(slots.stalledHolders(now: .seconds(35) + .milliseconds(1), timeout: .seconds(30)) == [2])
        #expect(slots.stalledHolders(now: .seconds(51), timeout: .seconds(30)) == [1, 2])
        slots.recordProgress(3, now: .seconds(1))
        #expect(!slots.holds(3), "progress of a stream without a slot grants nothing")
    }
}
