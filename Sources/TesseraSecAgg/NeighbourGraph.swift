/// Who shares keys and pairwise masks with whom.
///
/// In classic SecAgg (Bonawitz et al. 2017) every participant is a neighbour of every other:
/// the ``Kind/complete`` graph, with O(n) work per client and O(n²) pairs for the server.
/// SecAgg+ (Bell et al. 2020) replaces it by a sparse random graph of degree `k = O(log n)`:
/// a Harary graph H(n, k) (a ring where each vertex links to its k/2 nearest vertices on each
/// side, which is k-connected with the fewest edges) whose vertices are randomly permuted so
/// that the adversary cannot place its clients around a victim.
///
/// The permutation comes from a public round seed through ``DeterministicGenerator``, so the
/// server and every client build the identical graph from the roster and the seed alone. The
/// seed must be fixed before the set of corrupted clients can depend on it (for example,
/// chosen by the coordinator when the round is created, after the cohort is selected).
///
/// Each participant `u` holds its own shares too, so the share holders of `u` are
/// ``neighbours(of:)`` plus `u`: `k + 1` holders, and the threshold satisfies `t ≤ k + 1`.
public struct NeighbourGraph: Sendable, Hashable {
    /// The shape of the graph.
    public enum Kind: Sendable, Hashable {
        /// Everybody is everybody's neighbour (classic SecAgg).
        case complete
        /// A randomly permuted Harary graph H(n, degree); `degree` is even and `< n`.
        case harary(degree: Int, seed: [UInt8])
    }

    /// The shape this graph was built with.
    public let kind: Kind
    /// The participants, sorted ascending. Positions in this array index the adjacency below.
    public let participants: [UInt32]
    /// position of an id in ``participants``.
    private let positionOf: [UInt32: Int]
    /// For Harary graphs: ring position → participant index (the permutation), and its inverse.
    private let ring: [Int]
    private let ringPosition: [Int]

    /// Builds the graph over `participants` (distinct, non-zero ids, in any order).
    public init(participants: [UInt32], kind: Kind) throws(SecAggError) {
        let sorted = participants.sorted()
        guard !sorted.isEmpty else {
            throw SecAggError(
                code: .invalidConfiguration, message: "A neighbourhood graph needs at least one participant.")
        }
        guard sorted.first != 0 else {
            throw SecAggError(
                code: .invalidConfiguration,
                message: "Participant id 0 is reserved (it is the server's id and not a valid Shamir evaluation point)."
            )
        }
        for index in 1..<sorted.count where sorted[index] == sorted[index - 1] {
            throw SecAggError(
                code: .invalidConfiguration, message: "Participant id \(sorted[index]) appears twice in the roster.",
                participant: sorted[index])
        }
        var positions: [UInt32: Int] = [:]
        positions.reserveCapacity(sorted.count)
        for (index, id) in sorted.enumerated() { positions[id] = index }
        self.kind = kind
        self.participants = sorted
        self.positionOf = positions
        switch kind {
        case .complete:
            self.ring = []
            self.ringPosition = []
        case .harary(let degree, let seed):
            let n = sorted.count
            guard degree >= 2, degree % 2 == 0, degree < n else {
                throw SecAggError(
                    code: .invalidConfiguration,
                    message: "A Harary graph H(n, k) here needs an even degree 2 ≤ k < n; got k = \(degree), n = \(n).")
            }
            // Fisher–Yates with the fixed generator: ring[p] is the participant index at ring position p.
            var generator = DeterministicGenerator(seed: seed)
            var permutation = Array(0..<n)
            if n > 1 {
                for i in stride(from: n - 1, to: 0, by: -1) {
                    let j = Int(generator.next(below: UInt64(i + 1)))
                    permutation.swapAt(i, j)
                }
            }
            var inverse = [Int](repeating: 0, count: n)
            for (position, index) in permutation.enumerated() { inverse[index] = position }
            self.ring = permutation
            self.ringPosition = inverse
        }
    }

    /// The number of participants.
    public var count: Int { participants.count }

    /// The degree of every vertex.
    public var degree: Int {
        switch kind {
        case .complete: participants.count - 1
        case .harary(let degree, _): degree
        }
    }

    /// `true` when `id` is in the roster.
    public func contains(_ id: UInt32) -> Bool { positionOf[id] != nil }

    /// The neighbours of `id` (never `id` itself), sorted ascending; empty for an unknown id.
    public func neighbours(of id: UInt32) -> [UInt32] {
        guard let index = positionOf[id] else { return [] }
        switch kind {
        case .complete:
            var result = participants
            result.remove(at: index)
            return result
        case .harary(let degree, _):
            let n = participants.count
            let position = ringPosition[index]
            var result: [UInt32] = []
            result.reserveCapacity(degree)
            for offset in 1...(degree / 2) {
                result.append(participants[ring[(position + offset) % n]])
                result.append(participants[ring[(position - offset + n) % n]])
            }
            result.sort()
            return result
        }
    }

    /// `true` when `a` and `b` are distinct neighbours.
    public func areNeighbours(_ a: UInt32, _ b: UInt32) -> Bool {
        guard a != b, let i = positionOf[a], let j = positionOf[b] else { return false }
        switch kind {
        case .complete:
            return true
        case .harary(let degree, _):
            let n = participants.count
            let distance = abs(ringPosition[i] - ringPosition[j])
            return min(distance, n - distance) <= degree / 2
        }
    }

    /// The share holders of `id`: its neighbours and itself, sorted.
    public func holders(of id: UInt32) -> [UInt32] {
        guard contains(id) else { return [] }
        var result = neighbours(of: id)
        let insertAt = result.firstIndex(where: { $0 > id }) ?? result.count
        result.insert(id, at: insertAt)
        return result
    }
}
