import Synchronization
import TesseraCrypto
import TesseraSupport

/// The server's mask removal, spread over the cores.
///
/// This is the only place the module uses threads. Removing the masks of a round means one
/// d-word AES-CTR expansion per survivor (its self mask) plus, for every dropped participant,
/// one X25519 and one expansion per surviving neighbour, so it has to use every core.
///
/// The work is handed out in small pieces by `TesseraSupport`'s `ParallelLoop`, so a core slowed
/// down by another process simply takes fewer. It is cut one of two ways:
/// - **by tasks** (the faster): each worker derives the seeds of a batch of tasks (with their
///   X25519) and adds their masks into an accumulator of its own: worker 0 works in the result,
///   the others in private d-word vectors added in at the end. One AES key setup per seed.
/// - **by ranges of the vector**, when those private vectors would take more than
///   ``scratchBudgetBytes`` and more than one vector: the seeds are derived first, in parallel,
///   then each range of the sum has every mask applied to it in place (AES-CTR starts anywhere
///   in a keystream), so nothing but the sum is written. The price is one key setup per seed
///   and range, which is why ranges are long.
/// Either way a batch's masks are applied in one pass with
/// ``MaskPRG/add(seeds:signs:into:startingAt:)``, which keeps each 16 KiB block of the
/// accumulator in L1 while all the batch's keystreams are added to it.
enum SecAggParallel {
    /// One mask to remove.
    enum MaskTask: Sendable {
        /// A reconstructed self-mask seed, applied with the given sign.
        case seed(SecretBytes, MaskPRG.Sign)
        /// A dropped participant's reconstructed masking key and a surviving neighbour's public
        /// masking key: the pair's seed is derived in the worker (the X25519 is part of the
        /// heavy work that must be parallel).
        case pair(X25519PrivateKey, X25519PublicKey, ownID: UInt32, peerID: UInt32, MaskPRG.Sign)

        var sign: MaskPRG.Sign {
            switch self {
            case .seed(_, let sign), .pair(_, _, _, _, let sign): sign
            }
        }
    }

    /// Masks per batch: enough to amortise a pass over the accumulator, few enough to balance.
    static let batchSize = 8
    /// The shortest range of the vector given out on its own, when the vector is cut (256 KiB).
    static let minimumRangeWords = 1 << 16
    /// How much memory private accumulators may take beyond one vector before the vector is cut
    /// instead of the tasks.
    static let scratchBudgetBytes = 64 << 20

    /// `sum[i] &+= input[i]`, a loop the compiler vectorises.
    @inline(__always)
    static func addWords(_ sum: UnsafeMutableBufferPointer<UInt32>, _ input: UnsafeBufferPointer<UInt32>) {
        guard let s = sum.baseAddress, let x = input.baseAddress else { return }
        for i in 0..<min(sum.count, input.count) { s[i] = s[i] &+ x[i] }
    }

    /// Applies every task's mask (with its sign) to `sum`.
    static func removeMasks(
        _ tasks: [MaskTask], from sum: inout [UInt32], roundID: UInt64, workerCount: Int,
        scratchBudgetBytes: Int = SecAggParallel.scratchBudgetBytes
    ) throws(SecAggError) {
        let d = sum.count
        guard d > 0, !tasks.isEmpty else { return }
        let workers = max(1, min(workerCount, (tasks.count + batchSize - 1) / batchSize))
        if cutsByRanges(workers: workers, length: d, scratchBudgetBytes: scratchBudgetBytes) {
            try removeMasksByRanges(tasks, from: &sum, roundID: roundID, workers: workers)
        } else {
            try removeMasksByTasks(tasks, from: &sum, roundID: roundID, workers: workers)
        }
    }

    /// Whether the private accumulators of `workers` workers would take more than one vector of
    /// `length` words and more than `scratchBudgetBytes`.
    static func cutsByRanges(workers: Int, length: Int, scratchBudgetBytes: Int) -> Bool {
        let vectorBytes = length * MemoryLayout<UInt32>.stride
        return (workers - 1) * vectorBytes > max(vectorBytes, scratchBudgetBytes)
    }

    private static func removeMasksByTasks(
        _ tasks: [MaskTask], from sum: inout [UInt32], roundID: UInt64, workers: Int
    ) throws(SecAggError) {
        let d = sum.count
        let scratch = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: max(1, (workers - 1) * d))
        scratch.initialize(repeating: 0)
        defer { scratch.deallocate() }
        let batches = (tasks.count + batchSize - 1) / batchSize
        let failure = sum.withUnsafeMutableBufferPointer { result -> SecAggError? in
            let buffers = WorkerBuffers(result: result, scratch: scratch, length: d)
            do throws(SecAggError) {
                try ParallelLoop.forEach(count: batches, workers: workers) { (batch, worker) throws(SecAggError) in
                    let masks = try Self.batch(batch, of: tasks, roundID: roundID)
                    try addMasks(masks, into: buffers.accumulator(for: worker), at: 0, roundID)
                }
            } catch {
                return error
            }
            for worker in 1..<workers {
                addWords(result, UnsafeBufferPointer(buffers.accumulator(for: worker)))
            }
            return nil
        }
        if let failure { throw failure }
    }

    private static func removeMasksByRanges(
        _ tasks: [MaskTask], from sum: inout [UInt32], roundID: UInt64, workers: Int
    ) throws(SecAggError) {
        let d = sum.count
        let batches = try allBatches(of: tasks, roundID: roundID, workers: workers)
        // A few ranges per worker for balance, none shorter than the minimum.
        let ranges = max(1, min(workers * 4, d / minimumRangeWords))
        let rangeWords = (d + ranges - 1) / ranges
        let failure = sum.withUnsafeMutableBufferPointer { result -> SecAggError? in
            let buffers = WorkerBuffers(
                result: result, scratch: UnsafeMutableBufferPointer(start: nil, count: 0), length: d)
            do throws(SecAggError) {
                try ParallelLoop.forEach(count: ranges, workers: workers) { (range, _) throws(SecAggError) in
                    let start = range * rangeWords
                    let words = UnsafeMutableBufferPointer(rebasing: buffers.result[start..<min(d, start + rangeWords)])
                    for masks in batches { try addMasks(masks, into: words, at: start, roundID) }
                }
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }

    /// The seeds and signs of one batch of tasks.
    private struct MaskBatch: Sendable {
        var seeds: [SecretBytes]
        var signs: [MaskPRG.Sign]
    }

    /// Batch `index` of `tasks`, its pairs' seeds derived.
    private static func batch(_ index: Int, of tasks: [MaskTask], roundID: UInt64) throws(SecAggError) -> MaskBatch {
        let range = (index * batchSize)..<min(tasks.count, (index + 1) * batchSize)
        var batch = MaskBatch(seeds: [], signs: [])
        batch.seeds.reserveCapacity(range.count)
        batch.signs.reserveCapacity(range.count)
        for task in tasks[range] {
            batch.seeds.append(try seed(of: task, roundID: roundID))
            batch.signs.append(task.sign)
        }
        return batch
    }

    /// Every batch of `tasks`, the pairs' X25519 computed on `workers` threads.
    private static func allBatches(
        of tasks: [MaskTask], roundID: UInt64, workers: Int
    ) throws(SecAggError) -> [MaskBatch] {
        let count = (tasks.count + batchSize - 1) / batchSize
        let batches = Mutex<[MaskBatch?]>(Array(repeating: nil, count: count))
        try ParallelLoop.forEach(count: count, workers: workers) { (index, _) throws(SecAggError) in
            let batch = try Self.batch(index, of: tasks, roundID: roundID)
            batches.withLock { $0[index] = batch }
        }
        return batches.withLock { $0.map { $0! } }
    }

    /// Adds a batch's masks (with their signs) into `accumulator`, which holds the words from
    /// `offset` on.
    private static func addMasks(
        _ masks: MaskBatch, into accumulator: UnsafeMutableBufferPointer<UInt32>, at offset: Int, _ roundID: UInt64
    ) throws(SecAggError) {
        do {
            try MaskPRG.add(seeds: masks.seeds, signs: masks.signs, into: accumulator, startingAt: offset)
        } catch {
            throw SecAggError(
                code: .reconstructionFailed, message: "Mask expansion failed during unmasking.", stage: .unmasking,
                roundID: roundID, cause: error as? CryptoError)
        }
    }

    /// The result and the workers' private accumulators. `@unchecked Sendable` is sound because
    /// worker `w` only ever touches `accumulator(for: w)` (cut by tasks) or the ranges it was
    /// given (cut by ranges), these are disjoint, and the buffers outlive the
    /// `ParallelLoop.forEach` call that uses them.
    private struct WorkerBuffers: @unchecked Sendable {
        let result: UnsafeMutableBufferPointer<UInt32>
        let scratch: UnsafeMutableBufferPointer<UInt32>
        let length: Int

        func accumulator(for worker: Int) -> UnsafeMutableBufferPointer<UInt32> {
            worker == 0
                ? result : UnsafeMutableBufferPointer(rebasing: scratch[((worker - 1) * length)..<(worker * length)])
        }
    }

    /// The seed of one task's mask: given, or derived from the pair's keys.
    private static func seed(of task: MaskTask, roundID: UInt64) throws(SecAggError) -> SecretBytes {
        switch task {
        case .seed(let seed, _):
            return seed
        case .pair(let own, let peer, let ownID, let peerID, _):
            do {
                return try SecAggProtocol.maskSeed(own: own, peer: peer, roundID: roundID, ownID: ownID, peerID: peerID)
            } catch {
                throw SecAggError(
                    code: .reconstructionFailed,
                    message:
                        "Cannot re-derive the pairwise mask of dropped participant \(ownID) and participant \(peerID).",
                    participant: ownID, stage: .unmasking, roundID: roundID, cause: error as? CryptoError)
            }
        }
    }
}
