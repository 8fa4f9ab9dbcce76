import Foundation

/// The adversary a parameter choice must withstand.
public enum SecAggAdversary: Sendable, Hashable {
    /// The server follows the protocol but colludes with the corrupted clients and pools
    /// everything they saw (Bonawitz et al. 2017's honest-but-curious setting).
    case semiHonest
    /// The server may lie about who dropped out (the active setting, with the
    /// ConsistencyCheck stage); the threshold must stop it from collecting both kinds of share
    /// of one honest client from two disjoint groups of honest holders.
    case activeServer
}

/// A degree and threshold for one cohort, with the probabilities they were checked against.
public struct SecAggParameters: Sendable, Hashable, CustomStringConvertible {
    /// ``NeighbourGraph/Kind`` without the seed: the finder chooses the shape, the round
    /// supplies the seed.
    public enum Shape: Sendable, Hashable {
        case complete
        case harary(degree: Int)
    }

    /// The cohort size the parameters were computed for.
    public var cohortSize: Int
    /// The graph shape.
    public var shape: Shape
    /// Neighbours per participant (`n − 1` for the complete graph).
    public var degree: Int
    /// The Shamir threshold `t` (shares come from the `degree + 1` holders: neighbours and self).
    public var threshold: Int
    /// log2 of the union bound on the honest survivors' graph disconnecting (−∞ when impossible).
    public var log2DisconnectionProbability: Double
    /// log2 of the union bound on some honest client having too many corrupted holders.
    public var log2SecurityFailureProbability: Double
    /// log2 of the union bound on some client keeping fewer than `t` surviving holders.
    public var log2CorrectnessFailureProbability: Double

    /// `"k,t"`, the form the benchmarks report.
    public var description: String { "\(degree),\(threshold)" }

    /// The graph kind for a round with public `seed`.
    public func graphKind(seed: [UInt8]) -> NeighbourGraph.Kind {
        switch shape {
        case .complete: .complete
        case .harary(let degree): .harary(degree: degree, seed: seed)
        }
    }
}

/// Chooses the SecAgg+ neighbourhood degree `k` and Shamir threshold `t` for a cohort
/// (Bell et al. 2020, "Secure Single-Server Aggregation with (Poly)Logarithmic Overhead",
/// §3–4 and their parameter discussion), with statistical security σ = 40 bits and failure
/// probability 2^−η, η = 20 bits.
///
/// ## Model
///
/// `n` participants; the adversary controls the server and `A = ⌊αn⌋` clients chosen before
/// the graph's random permutation is revealed; `D = ⌊δn⌋` clients drop out at some point of
/// the round, independently of the permutation. The graph is a uniformly permuted Harary graph
/// H(n, k) (even k); the share holders of a client are its k neighbours and itself.
///
/// ## Conditions (all probabilities computed exactly, in log space)
///
/// 1. **Honest survivors stay connected** (security). If the graph of honest survivors split,
///    the pairwise masks would cancel inside each component and the server would learn each
///    component's partial sum. Removing vertices disconnects H(n, k) only if the removed set
///    contains two disjoint runs of k/2 consecutive ring positions. With `B = A + D` removed
///    vertices placed uniformly, a fixed set of k positions is entirely removed with
///    probability `B!(n−k)! / (n!(B−k)!)`; a union bound over the at most `n(n−k−1)/2` pairs
///    of runs must stay below `2^−(σ+1)`.
/// 2. **No honest client has t corrupted holders** (security). The corrupted neighbours of an
///    honest client follow the hypergeometric law `X ~ HG(N = n−1, K = A, draws = k)`. The
///    server legitimately learns one of an honest client's two secrets (b if it survived,
///    s_sk if it dropped); the other must stay hidden, and only corrupted holders would hand
///    over that other share. So `t > X` must hold for every honest client: with a union bound
///    over `n` clients, `P[X ≥ t] ≤ 2^−(σ+1) / n`. Against an active server, which can ask two
///    disjoint groups of honest holders for different shares, the honest holders
///    `k + 1 − X` must not cover two requests: `2t > k + 1 + X`, i.e. `P[X ≥ 2t − k − 1] ≤ 2^−(σ+1)/n`.
///    (σ is split evenly between conditions 1 and 2, hence the `σ + 1`.)
/// 3. **Every client keeps t surviving holders** (correctness). For a surviving client the
///    surviving holders are itself plus `Y ~ HG(n−1, n−1−D, k)`; for a dropped client they
///    are `Y' ~ HG(n−1, n−D, k)`. Both `P[1 + Y < t]` and `P[Y' < t]` must be at most
///    `2^−η / n` (union bound over the clients).
///
/// ## Search
///
/// For `k = 2, 4, …` below `n − 1`, condition 1 is checked; then `t_lo` is the least `t` that
/// meets condition 2 and `t_hi` the largest that meets condition 3. The first `k` with
/// `max(t_lo, 2) ≤ t_hi` wins, with `t = max(t_lo, 2)`: the smallest safe threshold, which
/// tolerates the most dropouts and makes reconstruction cheapest (a threshold of 1 would make
/// every single share the secret itself, hence the floor of 2). If no Harary degree works
/// (small `n`, or large `α + δ`), the complete graph is used, where the same three conditions
/// become deterministic: connectivity always holds, `t ≥ A + 1` (active: `2t > n + A`), and
/// `t ≤ n − D`. If even that interval is empty, the cohort cannot meet the requirements and
/// the finder throws ``SecAggError/Code-swift.struct/infeasibleParameters``.
public enum SecAggParameterFinder {
    /// Statistical security σ, in bits.
    public static let securityBits: Double = 40
    /// Correctness (failure probability) η, in bits.
    public static let correctnessBits: Double = 20

    /// Finds `(k, t)` for a cohort of `cohortSize` with dropout rate `dropoutRate` and
    /// corruption rate `corruptionRate` (both in [0, 1)).
    public static func find(
        cohortSize n: Int,
        dropoutRate delta: Double,
        corruptionRate alpha: Double,
        adversary: SecAggAdversary = .semiHonest
    ) throws(SecAggError) -> SecAggParameters {
        guard n >= 2 else {
            throw SecAggError(
                code: .invalidConfiguration, message: "Secure aggregation needs at least 2 participants, got \(n).")
        }
        guard (0..<1).contains(delta), (0..<1).contains(alpha) else {
            throw SecAggError(
                code: .invalidConfiguration,
                message: "Dropout rate and corruption rate must lie in [0, 1); got δ = \(delta), α = \(alpha).")
        }
        let corrupted = count(alpha, of: n)
        let dropped = count(delta, of: n)
        var k = 2
        while k < n - 1 {
            if let parameters = check(n: n, k: k, corrupted: corrupted, dropped: dropped, adversary: adversary) {
                return parameters
            }
            k += 2
        }
        if let parameters = check(n: n, k: n - 1, corrupted: corrupted, dropped: dropped, adversary: adversary) {
            return parameters
        }
        throw SecAggError(
            code: .infeasibleParameters,
            message:
                "No threshold works for n = \(n) with \(corrupted) corrupted (α = \(alpha)) and \(dropped) dropped (δ = \(delta)) "
                + "clients, even on the complete graph: security needs t above the corrupted holders, correctness needs t "
                + "at most the surviving holders. Lower α or δ, or enlarge the cohort.")
    }

    /// `⌊rate · n⌋`, nudged up by 1e-9 so that, e.g., 0.29 · 100 counts 29 clients, not 28:
    /// rounding in the insecure direction is never allowed.
    static func count(_ rate: Double, of n: Int) -> Int {
        min(n, Int((rate * Double(n) + 1e-9).rounded(.down)))
    }

    /// Checks degree `k` (`k == n − 1` means the complete graph) and returns the parameters
    /// with the smallest safe threshold, or `nil` if no threshold satisfies every condition.
    static func check(n: Int, k: Int, corrupted: Int, dropped: Int, adversary: SecAggAdversary) -> SecAggParameters? {
        let complete = k >= n - 1
        let logSecurityBudget = -(securityBits + 1) * M_LN2
        let logCorrectnessBudget = -correctnessBits * M_LN2 - log(Double(n))
        let logPerClientSecurity = logSecurityBudget - log(Double(n))

        // Condition 1: connectivity of the honest survivors.
        let logDisconnect =
            complete ? -Double.infinity : logProbabilityDisconnected(n: n, k: k, removed: corrupted + dropped)
        guard logDisconnect < logSecurityBudget else { return nil }

        // Condition 2: smallest t with P[corrupted holders ≥ t (or 2t−k−1)] small enough.
        let corruptedTail = Hypergeometric(population: n - 1, successes: corrupted, draws: k).logUpperTails()
        // q: least value with log P[X ≥ q] ≤ budget (q ≤ k + 1 always, P[X ≥ k+1] = 0).
        var q = 0
        while q <= k, corruptedTail[q] > logPerClientSecurity { q += 1 }
        var tLow: Int
        switch adversary {
        case .semiHonest: tLow = q
        case .activeServer: tLow = (q + k + 1 + 1) / 2  // ⌈(q + k + 1) / 2⌉
        }
        tLow = max(tLow, 2)

        // Condition 3: largest t with P[surviving holders < t] small enough, for survivors and dropouts.
        let survivorNeighbours = Hypergeometric(population: n - 1, successes: max(0, n - 1 - dropped), draws: k)
            .logLowerTails()
        let droppedNeighbours = Hypergeometric(population: n - 1, successes: min(n - 1, max(0, n - dropped)), draws: k)
            .logLowerTails()
        // logLowerTails[j] = log P[Y ≤ j]; P[1 + Y < t] = P[Y ≤ t − 2]; P[Y' < t] = P[Y' ≤ t − 1].
        func correctnessLog(_ t: Int) -> Double {
            let survivor = t - 2 < 0 ? -Double.infinity : survivorNeighbours[min(t - 2, k)]
            let droppedOne = t - 1 < 0 ? -Double.infinity : droppedNeighbours[min(t - 1, k)]
            return logAddExp(survivor, droppedOne)
        }
        var tHigh = 0
        for t in stride(from: k + 1, through: 1, by: -1) where correctnessLog(t) <= logCorrectnessBudget {
            tHigh = t
            break
        }
        guard tLow <= tHigh else { return nil }
        let t = tLow
        let logSecurity = log(Double(n)) + corruptedTailLog(corruptedTail, threshold: t, k: k, adversary: adversary)
        return SecAggParameters(
            cohortSize: n,
            shape: complete ? .complete : .harary(degree: k),
            degree: complete ? n - 1 : k,
            threshold: t,
            log2DisconnectionProbability: logDisconnect / M_LN2,
            log2SecurityFailureProbability: logSecurity / M_LN2,
            log2CorrectnessFailureProbability: (log(Double(n)) + correctnessLog(t)) / M_LN2
        )
    }

    private static func corruptedTailLog(
        _ tail: [Double], threshold t: Int, k: Int, adversary: SecAggAdversary
    ) -> Double {
        let index: Int
        switch adversary {
        case .semiHonest: index = t
        case .activeServer: index = 2 * t - k - 1
        }
        if index <= 0 { return 0 }
        if index >= tail.count { return -.infinity }
        return tail[index]
    }

    /// Natural log of the union bound on H(n, k) (uniformly permuted) disconnecting when
    /// `removed` vertices are deleted: `log(n(n−k−1)/2) + log(removed)_k − log(n)_k` with falling
    /// factorials, or −∞ when fewer than k vertices are removed (two disjoint runs of k/2 are
    /// impossible).
    public static func logProbabilityDisconnected(n: Int, k: Int, removed: Int) -> Double {
        guard removed >= k, n - k - 1 > 0 else { return -.infinity }
        let pairs = log(Double(n)) + log(Double(n - k - 1)) - M_LN2
        let allRemoved = logFalling(removed, k) - logFalling(n, k)
        return pairs + allRemoved
    }

    /// log of `a (a−1) … (a−k+1)`.
    static func logFalling(_ a: Int, _ k: Int) -> Double {
        lgamma(Double(a) + 1) - lgamma(Double(a - k) + 1)
    }

    /// log(e^a + e^b) without overflow.
    static func logAddExp(_ a: Double, _ b: Double) -> Double {
        if a == -.infinity { return b }
        if b == -.infinity { return a }
        let m = max(a, b)
        return m + log1p(exp(-abs(a - b)))
    }
}

/// The hypergeometric law: `draws` items taken without replacement from `population` items of
/// which `successes` are marked; the number of marked items drawn. Everything in natural logs.
public struct Hypergeometric: Sendable {
    public let population: Int
    public let successes: Int
    public let draws: Int

    public init(population: Int, successes: Int, draws: Int) {
        precondition(
            population >= 0 && (0...population).contains(successes) && (0...population).contains(draws),
            "Hypergeometric parameters out of range")
        self.population = population
        self.successes = successes
        self.draws = draws
    }

    static func logChoose(_ n: Int, _ r: Int) -> Double {
        if r < 0 || r > n { return -.infinity }
        return lgamma(Double(n) + 1) - lgamma(Double(r) + 1) - lgamma(Double(n - r) + 1)
    }

    /// log P[X = x].
    public func logPMF(_ x: Int) -> Double {
        Self.logChoose(successes, x) + Self.logChoose(population - successes, draws - x)
            - Self.logChoose(population, draws)
    }

    /// `result[x] = log P[X ≥ x]` for `x` in `0...draws + 1` (the last is −∞).
    public func logUpperTails() -> [Double] {
        var tails = [Double](repeating: -.infinity, count: draws + 2)
        var running = -Double.infinity
        for x in stride(from: draws, through: 0, by: -1) {
            running = SecAggParameterFinder.logAddExp(running, logPMF(x))
            tails[x] = min(running, 0)
        }
        return tails
    }

    /// `result[x] = log P[X ≤ x]` for `x` in `0...draws`.
    public func logLowerTails() -> [Double] {
        var tails = [Double](repeating: -.infinity, count: draws + 1)
        var running = -Double.infinity
        for x in 0...draws {
            running = SecAggParameterFinder.logAddExp(running, logPMF(x))
            tails[x] = min(running, 0)
        }
        return tails
    }
}

/// How a round asks for its neighbourhood graph.
public enum SecAggNeighbourhood: Sendable, Hashable {
    /// ``SecAggParameterFinder/find(cohortSize:dropoutRate:corruptionRate:adversary:)`` chooses
    /// the complete graph or a Harary degree, and the threshold.
    case automatic
    /// Classic SecAgg: everybody is everybody's neighbour.
    case complete
    /// SecAgg+: a randomly permuted Harary graph of this (even) degree.
    case harary(degree: Int)
}

/// A Shamir threshold a round fixes instead of deriving it from the tolerated rates.
public enum SecAggThreshold: Sendable, Hashable {
    case count(Int)
    /// `⌈fraction · holders⌉`, where holders are a participant's neighbours plus itself.
    case fraction(Double)
}

/// The graph shape and Shamir threshold chosen for one round's cohort.
public struct SecAggRoundParameters: Sendable, Hashable {
    public var shape: SecAggParameters.Shape
    /// The Shamir threshold `t`, in `2...holders`.
    public var threshold: Int
    /// Share holders per participant: its neighbours and itself.
    public var holders: Int

    public init(shape: SecAggParameters.Shape, threshold: Int, holders: Int) {
        self.shape = shape
        self.threshold = threshold
        self.holders = holders
    }

    /// The graph kind for a round with public `seed`.
    public func graphKind(seed: [UInt8]) -> NeighbourGraph.Kind {
        switch shape {
        case .complete: .complete
        case .harary(let degree): .harary(degree: degree, seed: seed)
        }
    }
}

/// Why no graph and threshold could be chosen for a round's cohort. It names the cohort size
/// and the tolerated rates, so that an operator knows which to change.
public struct SecAggParameterError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String, Sendable, Hashable {
            case tooFewParticipants, invalidRates, degreeTooLarge, noSafeParameters, thresholdTooLow
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// Fewer than 2 participants: there is no sum to hide an input in.
        public static let tooFewParticipants = Code(.tooFewParticipants)
        /// A dropout or corruption rate outside `[0, 1)`.
        public static let invalidRates = Code(.invalidRates)
        /// A fixed Harary degree that needs more participants than the cohort has.
        public static let degreeTooLarge = Code(.degreeTooLarge)
        /// No degree and threshold meet the security and correctness conditions for these rates,
        /// even on the complete graph.
        public static let noSafeParameters = Code(.noSafeParameters)
        /// The threshold does not exceed the number of corrupted holders the rates tolerate.
        public static let thresholdTooLow = Code(.thresholdTooLow)

        public var description: String { value.rawValue }
    }

    public var code: Code
    public var cohortSize: Int
    public var dropoutRate: Double
    public var corruptionRate: Double
    /// What is wrong and what would fix it.
    public var message: String

    public init(code: Code, cohortSize: Int, dropoutRate: Double, corruptionRate: Double, message: String) {
        self.code = code
        self.cohortSize = cohortSize
        self.dropoutRate = dropoutRate
        self.corruptionRate = corruptionRate
        self.message = message
    }

    public var description: String {
        "no secure-aggregation parameters for a cohort of \(cohortSize) (dropout rate \(dropoutRate), "
            + "corruption rate \(corruptionRate)): \(message)"
    }
}

extension SecAggParameterFinder {
    /// The graph and threshold of a round of `cohortSize` participants.
    ///
    /// `.automatic` takes the finder's `(k, t)`; `.complete` and `.harary` take the threshold
    /// that completes when `⌊δ · holders⌋` holders drop out. A fixed `threshold` replaces the
    /// derived one. Either way the threshold is clamped to `2...holders` and must exceed the
    /// `⌊α · holders⌋` corrupted holders tolerated.
    ///
    /// - Throws: ``SecAggParameterError`` when no parameters satisfy the request; never a
    ///   weaker choice in its place.
    public static func roundParameters(
        cohortSize n: Int, neighbourhood: SecAggNeighbourhood, threshold fixed: SecAggThreshold?,
        dropoutRate delta: Double, corruptionRate alpha: Double, adversary: SecAggAdversary = .semiHonest
    ) throws(SecAggParameterError) -> SecAggRoundParameters {
        func failure(_ code: SecAggParameterError.Code, _ message: String) -> SecAggParameterError {
            SecAggParameterError(code: code, cohortSize: n, dropoutRate: delta, corruptionRate: alpha, message: message)
        }
        guard n >= 2 else {
            throw failure(.tooFewParticipants, "secure aggregation needs at least 2 participants, got \(n)")
        }
        // The threshold that still completes when ⌊δ·holders⌋ of the holders drop out.
        func dropoutTolerant(holders: Int) -> Int {
            max(2, holders - Int((delta * Double(holders)).rounded(.down)))
        }
        let shape: SecAggParameters.Shape
        let holders: Int
        var threshold: Int
        switch neighbourhood {
        case .automatic:
            let found: SecAggParameters
            do {
                found = try find(cohortSize: n, dropoutRate: delta, corruptionRate: alpha, adversary: adversary)
            } catch {
                throw failure(
                    error.code == .infeasibleParameters ? .noSafeParameters : .invalidRates, error.message)
            }
            shape = found.shape
            holders = found.degree + 1
            threshold = found.threshold
        case .complete:
            shape = .complete
            holders = n
            threshold = dropoutTolerant(holders: n)
        case .harary(let degree):
            guard degree < n else {
                throw failure(
                    .degreeTooLarge,
                    "a Harary graph of degree \(degree) needs more than \(degree) participants; the cohort has \(n)")
            }
            shape = .harary(degree: degree)
            holders = degree + 1
            threshold = dropoutTolerant(holders: holders)
        }
        switch fixed {
        case .count(let t)?: threshold = t
        case .fraction(let f)?: threshold = Int((f * Double(holders) - 1e-9).rounded(.up))
        case nil: break
        }
        threshold = min(max(threshold, 2), holders)
        let corruptedHolders = Int((alpha * Double(holders)).rounded(.down))
        guard threshold > corruptedHolders else {
            throw failure(
                .thresholdTooLow,
                "threshold \(threshold) does not exceed the \(corruptedHolders) corrupted holders tolerated among \(holders)"
            )
        }
        return SecAggRoundParameters(shape: shape, threshold: threshold, holders: holders)
    }
}

extension SecAggParameterFinder {
    /// The least threshold a share holder can accept for a graph it did not choose: the
    /// security condition (2) of ``SecAggParameterFinder`` alone, for the `⌊α · n⌋` corrupted
    /// clients that `corruptionRate` tolerates, with the floor of 2.
    ///
    /// A site checks a coordinator's `(shape, t)` with it: the finder picks `t` from this bound
    /// and the correctness bound, so for the shape the finder chose the two agree, while a `t`
    /// below this bound lets the server and its clients rebuild an honest client's secret. On
    /// the complete graph the corrupted holders are exactly `⌊α · n⌋`, so the bound is
    /// `⌊α · n⌋ + 1` (active: the least `t` with `2t > n + ⌊α · n⌋`); on a Harary graph it is the
    /// hypergeometric tail bound, in O(degree).
    ///
    /// - Throws: ``SecAggError/Code-swift.struct/invalidConfiguration`` when `n < 2`, the rate is
    ///   outside `[0, 1)`, or a Harary degree is not even in `2..<n`.
    public static func minimumSecureThreshold(
        cohortSize n: Int, shape: SecAggParameters.Shape, corruptionRate alpha: Double,
        adversary: SecAggAdversary
    ) throws(SecAggError) -> Int {
        guard n >= 2 else {
            throw SecAggError(
                code: .invalidConfiguration, message: "Secure aggregation needs at least 2 participants, got \(n).")
        }
        guard (0..<1).contains(alpha) else {
            throw SecAggError(
                code: .invalidConfiguration, message: "The corruption rate must lie in [0, 1); got α = \(alpha).")
        }
        // The others a client shares with; the client itself is honest, so at most all of them are corrupted.
        let degree: Int
        switch shape {
        case .complete: degree = n - 1
        case .harary(let k):
            guard k >= 2, k % 2 == 0, k < n else {
                throw SecAggError(
                    code: .invalidConfiguration,
                    message: "A Harary graph H(n, k) needs an even degree 2 ≤ k < n; got k = \(k), n = \(n).")
            }
            degree = k
        }
        let corrupted = min(count(alpha, of: n), n - 1)
        // q: the least value with P[corrupted holders ≥ q] within the per-client security budget.
        let q: Int
        if degree == n - 1 {
            q = corrupted + 1  // every other client is a holder: exactly `corrupted` of them are corrupted
        } else {
            let logPerClientSecurity = -(securityBits + 1) * M_LN2 - log(Double(n))
            let tail = Hypergeometric(population: n - 1, successes: corrupted, draws: degree).logUpperTails()
            var least = 0
            while least <= degree, tail[least] > logPerClientSecurity { least += 1 }
            q = least
        }
        switch adversary {
        case .semiHonest: return max(q, 2)
        case .activeServer: return max((q + degree + 2) / 2, 2)  // ⌈(q + degree + 1) / 2⌉
        }
    }

    /// Whether a randomly permuted Harary graph of `degree` over `n` clients keeps the honest
    /// survivors connected when `⌊α · n⌋` are corrupted and `⌊δ · n⌋` drop out: the security
    /// condition (1) of ``SecAggParameterFinder``. If they split, the pairwise masks cancel
    /// inside each part and the server learns each part's sum. The complete graph always passes.
    public static func keepsHonestSurvivorsConnected(
        cohortSize n: Int, shape: SecAggParameters.Shape, dropoutRate delta: Double, corruptionRate alpha: Double
    ) -> Bool {
        guard case .harary(let k) = shape, k < n - 1 else { return true }
        let removed = min(n, count(alpha, of: n) + count(delta, of: n))
        return logProbabilityDisconnected(n: n, k: k, removed: removed) < -(securityBits + 1) * M_LN2
    }
}
