import Dispatch
import Foundation
import Synchronization
import TesseraCrypto

/// The server's mask removal, spread over the cores.
///
/// This is the only place the module uses threads. Removing the masks of a round means one
/// d-word AES-CTR expansion per survivor (its self mask) plus, for every dropped participant,
/// one X25519 and one expansion per surviving neighbour: with n = 500 and 30% dropouts that is
/// about 52,000 pairs, i.e. 21 GB of keystream for d = 100k, so it has to use every core.
///
/// Design: the tasks are cut into small batches handed out through an atomic counter (so a
/// core slowed down by another process simply takes fewer batches). Each worker adds its
/// masks into a private accumulator: worker 0 works in the result itself, the others in
/// their own d-word buffers that are added in at the end. A batch's masks are applied in one
/// pass with ``MaskPRG/add(seeds:signs:into:startingAt:)``, which keeps each 16 KiB block of
/// the accumulator in L1 while all the batch's keystreams are added to it.
enum SecAggParallel {
    /// One mask to remove.
    enum MaskTask: Sendable {
        /// A reconstructed self-mask seed, applied with the given sign.
        case seed(SecretBytes, MaskPRG.Sign)
        /// A dropped participant's reconstructed masking key and a surviving neighbour's public
        /// masking key: the pair's seed is derived in the worker (the X25519 is part of the
        /// heavy work that must be parallel).
        case pair(X25519PrivateKey, X25519PublicKey, ownID: UInt32, peerID: UInt32, MaskPRG.Sign)
    }

    /// Masks per batch: enough to amortise a pass over the accumulator, few enough to balance.
    static let batchSize = 8

    static var defaultWorkerCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// `sum[i] &+= input[i]`, a loop the compiler vectorises.
    @inline(__always)
    static func addWords(_ sum: UnsafeMutableBufferPointer<UInt32>, _ input: UnsafeBufferPointer<UInt32>) {
        guard let s = sum.baseAddress, let x = input.baseAddress else { return }
        for i in 0..<min(sum.count, input.count) { s[i] = s[i] &+ x[i] }
    }

    /// Applies every task's mask (with its sign) to `sum`.
    static func removeMasks(
        _ tasks: [MaskTask], from sum: inout [UInt32], roundID: UInt64, workerCount: Int
    ) throws(SecAggError) {
        let d = sum.count
        guard d > 0, !tasks.isEmpty else { return }
        let batches = (tasks.count + batchSize - 1) / batchSize
        let workers = max(1, min(workerCount, batches))
        let next = Atomic<Int>(0)
        let failure = Mutex<SecAggError?>(nil)
        let scratch = UnsafeMutableBufferPointer<UInt32>.allocate(capacity: max(1, (workers - 1) * d))
        scratch.initialize(repeating: 0)
        defer { scratch.deallocate() }

        sum.withUnsafeMutableBufferPointer { result in
            let buffers = WorkerBuffers(result: result, scratch: scratch, length: d)
            let work: @Sendable (Int) -> Void = { worker in
                let accumulator = buffers.accumulator(for: worker)
                while failure.withLock({ $0 == nil }) {
                    let batch = next.wrappingAdd(1, ordering: .relaxed).oldValue
                    guard batch < batches else { return }
                    let range = (batch * batchSize)..<min(tasks.count, (batch + 1) * batchSize)
                    do throws(SecAggError) {
                        try apply(tasks[range], to: accumulator, roundID: roundID)
                    } catch {
                        failure.withLock { if $0 == nil { $0 = error } }
                        return
                    }
                }
            }
            if workers == 1 {
                work(0)
            } else {
                DispatchQueue.concurrentPerform(iterations: workers, execute: work)
            }
            for worker in 1..<max(1, workers) {
                addWords(result, UnsafeBufferPointer(buffers.accumulator(for: worker)))
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// The accumulators of the workers. `@unchecked Sendable` is sound because worker `w` only
    /// ever touches `accumulator(for: w)`, the slices are disjoint, and the buffers outlive the
    /// `concurrentPerform` call that uses them.
    private struct WorkerBuffers: @unchecked Sendable {
        let result: UnsafeMutableBufferPointer<UInt32>
        let scratch: UnsafeMutableBufferPointer<UInt32>
        let length: Int

        func accumulator(for worker: Int) -> UnsafeMutableBufferPointer<UInt32> {
            worker == 0
                ? result : UnsafeMutableBufferPointer(rebasing: scratch[((worker - 1) * length)..<(worker * length)])
        }
    }

    private static func apply(
        _ tasks: ArraySlice<MaskTask>, to accumulator: UnsafeMutableBufferPointer<UInt32>, roundID: UInt64
    ) throws(SecAggError) {
        var seeds: [SecretBytes] = []
        var signs: [MaskPRG.Sign] = []
        seeds.reserveCapacity(tasks.count)
        signs.reserveCapacity(tasks.count)
        for task in tasks {
            switch task {
            case .seed(let seed, let sign):
                seeds.append(seed)
                signs.append(sign)
            case .pair(let own, let peer, let ownID, let peerID, let sign):
                do {
                    seeds.append(
                        try SecAggProtocol.maskSeed(
                            own: own, peer: peer, roundID: roundID, ownID: ownID, peerID: peerID))
                } catch {
                    throw SecAggError(
                        code: .reconstructionFailed,
                        message:
                            "Cannot re-derive the pairwise mask of dropped participant \(ownID) and participant \(peerID).",
                        participant: ownID, stage: .unmasking, roundID: roundID, cause: error as? CryptoError)
                }
                signs.append(sign)
            }
        }
        do {
            try MaskPRG.add(seeds: seeds, signs: signs, into: accumulator)
        } catch {
            throw SecAggError(
                code: .reconstructionFailed, message: "Mask expansion failed during unmasking.", stage: .unmasking,
                roundID: roundID,
                cause: error as? CryptoError)
        }
    }
}
