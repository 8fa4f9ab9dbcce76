import Dispatch
import Foundation
import Synchronization

/// Tessera's one parallel-for: runs the items of a loop on several threads.
///
/// Items are handed out one at a time through an atomic counter, so a core slowed down by
/// another process simply takes fewer of them; a caller that wants contiguous chunks makes
/// each item a chunk. After the first failure no further item starts, and that failure is
/// rethrown once every running item has returned.
public enum ParallelLoop {
    /// The cores this process may use (at least 1), the usual worker count.
    public static var processorCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// Runs `body(item, worker)` for every item in `0..<count`, on `workers` threads with worker
    /// indices `0..<workers` (one thread runs only one item at a time, so per-worker scratch
    /// space indexed by `worker` is never shared). With one worker, or one item, everything
    /// runs on the calling thread.
    ///
    /// - Throws: the first error `body` threw; items not yet started then never run.
    public static func forEach<Failure: Error>(
        count: Int, workers: Int, _ body: @Sendable (_ item: Int, _ worker: Int) throws(Failure) -> Void
    ) throws(Failure) {
        guard count > 0 else { return }
        let threads = max(1, min(workers, count))
        let next = Atomic<Int>(0)
        let stopped = Atomic<Bool>(false)
        let failure = Mutex<Failure?>(nil)
        @Sendable func work(_ worker: Int) {
            while !stopped.load(ordering: .acquiring) {
                let item = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard item < count else { return }
                do throws(Failure) {
                    try body(item, worker)
                } catch {
                    failure.withLock { if $0 == nil { $0 = error } }
                    stopped.store(true, ordering: .releasing)
                    return
                }
            }
        }
        if threads == 1 {
            work(0)
        } else {
            DispatchQueue.concurrentPerform(iterations: threads) { work($0) }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }
}
