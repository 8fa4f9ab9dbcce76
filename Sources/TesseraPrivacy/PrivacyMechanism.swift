/// A noise mechanism applied once per round to a sum of clipped updates, described by what the
/// accountant needs: its Rényi-DP curve. Sensitivities are those of one site's contribution.
public enum PrivacyMechanism: Sendable, Hashable, Codable {
    /// Gaussian noise of standard deviation noiseMultiplier × sensitivity (central DP-FedAvg).
    case gaussian(noiseMultiplier: Double)
    /// Skellam noise Sk(mu, mu) = Poisson(mu) − Poisson(mu) (variance 2·mu) on each coordinate of a sum of
    /// integer vectors whose L1 / L2 sensitivities are given (distributed DP; mu is the TOTAL in the sum).
    case skellam(mu: Double, l1Sensitivity: Double, l2Sensitivity: Double)

    /// RDP of one application without sampling at order α > 1 (Gaussian: α/(2z²); Skellam: the paper's bound).
    ///
    /// Skellam: Agarwal, Kairouz and Liu 2021 ("The Skellam Mechanism for Differentially Private
    /// Federated Learning", §3, Theorem 3.5 and Corollary 3.6) bound the multidimensional mechanism of variance V per
    /// coordinate, at integer α > 1, by
    /// α·Δ₂²/(2V) + min(((2α − 1)·Δ₂² + 6·Δ₁)/(4V²), 3·Δ₁/(2V)); here V = 2·mu. The first term is the
    /// Gaussian's RDP at the same variance, so the bound tends to it as mu grows. A fractional order
    /// takes the bound at the next integer up, which is valid because RDP is nondecreasing in α.
    public func rdp(order alpha: Double) -> Double {
        precondition(alpha > 1 && alpha.isFinite, "RDP orders are finite and above 1")
        switch self {
        case .gaussian(let z):
            return alpha / (2 * z * z)
        case .skellam(let mu, let l1, let l2):
            return Self.skellamRDP(order: Int(alpha.rounded(.up)), mu: mu, l1: l1, l2: l2)
        }
    }

    /// RDP of one application under Poisson subsampling with rate q at each order: exact computation for the
    /// Gaussian (integer AND fractional orders, Mironov et al. 2019, numerically stable in log space);
    /// for Skellam, ``SubsampledRDP/shiftMechanismBound(samplingRate:order:rdp:)`` at integer orders (a
    /// fractional order uses the next integer up — RDP is nondecreasing in α; orders in (1,2) use 2).
    /// q = 1 gives rdp(order:) exactly; q = 0 gives 0.
    ///
    /// Each order is computed once; composing T rounds multiplies these values by T. For Skellam an
    /// order also takes any smaller bound found at a higher order of `orders` (RDP is nondecreasing).
    public func subsampledRDP(samplingRate q: Double, orders: [Double]) -> [Double] {
        precondition(q >= 0 && q <= 1, "the sampling rate is a probability (PrivacyMechanism.validate(samplingRate:))")
        if q == 0 { return orders.map { _ in 0 } }
        if q == 1 { return orders.map { rdp(order: $0) } }
        switch self {
        case .gaussian(let z):
            return orders.map { SubsampledRDP.gaussian(noiseMultiplier: z, samplingRate: q, order: $0) }
        case .skellam(let mu, let l1, let l2):
            let integerOrders = orders.map { alpha in
                precondition(alpha > 1 && alpha.isFinite, "RDP orders are finite and above 1")
                return max(2, Int(alpha.rounded(.up)))
            }
            let highest = integerOrders.max() ?? 2
            let unsampled = (0...highest).map { $0 < 2 ? 0 : Self.skellamRDP(order: $0, mu: mu, l1: l1, l2: l2) }
            // The true RDP is nondecreasing in α, so a bound at a higher order also bounds every lower
            // one. Each order takes the least bound at or above it (and never more than unsampled).
            var byOrder: [Int: Double] = [:]
            var least = Double.infinity
            for order in Set(integerOrders).sorted(by: >) {
                let bound = SubsampledRDP.shiftMechanismBound(samplingRate: q, order: order) { unsampled[$0] }
                least = min(least, bound, unsampled[order])
                byOrder[order] = least
            }
            return integerOrders.map { byOrder[$0] ?? .infinity }
        }
    }

    /// Throws PrivacyError(.invalidParameter) for non-finite / non-positive noise or sensitivities.
    public func validate() throws(PrivacyError) {
        switch self {
        case .gaussian(let z):
            try Self.requirePositive(z, "noise_multiplier")
        case .skellam(let mu, let l1, let l2):
            try Self.requirePositive(mu, "Skellam mu")
            try Self.requirePositive(l1, "Skellam L1 sensitivity")
            try Self.requirePositive(l2, "Skellam L2 sensitivity")
            // ‖x‖₂ ≤ ‖x‖₁ for every vector: a smaller L1 bound means the two were swapped.
            guard l2 <= l1 else {
                throw PrivacyError(
                    code: .invalidParameter,
                    message: "Skellam L1 sensitivity \(l1) is below the L2 sensitivity \(l2); an L1 norm is never "
                        + "below the L2 norm of the same vector (are they swapped?)")
            }
        }
    }

    /// Throws PrivacyError(.invalidParameter) unless q is a probability in [0, 1].
    public static func validate(samplingRate q: Double) throws(PrivacyError) {
        guard q.isFinite, q >= 0, q <= 1 else {
            throw PrivacyError(
                code: .invalidParameter, message: "the sampling rate must be a probability in [0, 1], got \(q)")
        }
    }

    /// Agarwal, Kairouz and Liu 2021, Theorem 3.5, with the paper's variance V = 2·mu.
    static func skellamRDP(order: Int, mu: Double, l1: Double, l2: Double) -> Double {
        let alpha = Double(order)
        let variance = 2 * mu
        let l2Squared = l2 * l2
        let gaussianTerm = alpha * l2Squared / (2 * variance)
        let correction = min(
            ((2 * alpha - 1) * l2Squared + 6 * l1) / (4 * variance * variance), 3 * l1 / (2 * variance))
        return gaussianTerm + correction
    }

    private static func requirePositive(_ value: Double, _ name: String) throws(PrivacyError) {
        guard value.isFinite, value > 0 else {
            throw PrivacyError(
                code: .invalidParameter, message: "\(name) must be a positive finite number, got \(value)")
        }
    }
}

extension PrivacyMechanism: CustomStringConvertible {
    public var description: String {
        switch self {
        case .gaussian(let z): "Gaussian, noise multiplier \(z)"
        case .skellam(let mu, let l1, let l2): "Skellam, mu \(mu), L1 sensitivity \(l1), L2 sensitivity \(l2)"
        }
    }
}
