import Synchronization
import TesseraSupport
import Testing

@Suite struct ParallelLoopTests {
    @Test(arguments: [1, 2, 3, 8])
    func everyItemRunsExactlyOnceOnAValidWorker(_ workers: Int) throws {
        let count = 1000
        let seen = Mutex([Int](repeating: 0, count: 1000))
        let badWorker = Atomic<Bool>(false)
        ParallelLoop.forEach(count: count, workers: workers) { (item, worker) in
            if worker < 0 || worker >= workers { badWorker.store(true, ordering: .relaxed) }
            seen.withLock { $0[item] += 1 }
        }
        #expect(seen.withLock { $0 } == [Int](repeating: 1, count: count))
        let anyBadWorker = badWorker.load(ordering: .relaxed)
        #expect(!anyBadWorker)
    }

    @Test func noItemsRunsNothing() {
        let calls = Atomic<Int>(0)
        ParallelLoop.forEach(count: 0, workers: 4) { (_, _) in calls.add(1, ordering: .relaxed) }
        let callCount = calls.load(ordering: .relaxed)
        #expect(callCount == 0)
    }

    struct Failure: Error, Equatable { let item: Int }

    @Test(arguments: [2, 4])
    func theFirstFailureIsRethrownFromAnyWorker(_ workers: Int) {
        #expect(throws: Failure(item: 3)) {
            try ParallelLoop.forEach(count: 10_000, workers: workers) { (item, _) throws(Failure) in
                if item == 3 { throw Failure(item: 3) }
            }
        }
    }

    /// On one worker the order is fixed, so exactly the items up to the failing one run.
    @Test func noItemStartsAfterAFailure() {
        let started = Atomic<Int>(0)
        #expect(throws: Failure(item: 3)) {
            try ParallelLoop.forEach(count: 100, workers: 1) { (item, _) throws(Failure) in
                started.add(1, ordering: .relaxed)
                if item == 3 { throw Failure(item: 3) }
            }
        }
        let startedCount = started.load(ordering: .relaxed)
        #expect(startedCount == 4)
    }

    @Test func oneWorkerRunsItemsInOrderOnTheCallingThread() {
        let order = Mutex<[Int]>([])
        ParallelLoop.forEach(count: 5, workers: 1) { (item, worker) in
            order.withLock { $0.append(item * 10 + worker) }
        }
        #expect(order.withLock { $0 } == [0, 10, 20, 30, 40])
    }
}
