#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// From Rényi DP to (ε, δ)-DP.
public enum RDPConversion {
    /// Balle et al. 2020 (as Opacus): ε = rdp − (log δ + log α)/(α − 1) + log((α − 1)/α), minimised over orders.
    ///
    /// Balle, Barthe, Gaboardi, Hsu and Sato 2020 ("Hypothesis Testing Interpretations and Rényi
    /// Differential Privacy", Theorem 21 of the arXiv version) tighten Mironov's rdp + log(1/δ)/(α − 1) by the two
    /// log α terms. Orders whose RDP is infinite or NaN are skipped; if none is usable the answer
    /// is (+∞, NaN). ε is never negative, and all-zero RDP (nothing released yet) spends ε = 0.
    public static func epsilon(orders: [Double], rdp: [Double], delta: Double) -> (epsilon: Double, order: Double) {
        precondition(orders.count == rdp.count, "one RDP value per order")
        precondition(delta > 0 && delta < 1, "δ is a probability in (0, 1) (RDPConversion.validate(delta:))")
        if !rdp.isEmpty, rdp.allSatisfy({ $0 == 0 }) { return (0, orders[orders.count - 1]) }
        let logDelta = log(delta)
        var best = (epsilon: Double.infinity, order: Double.nan)
        for (alpha, value) in zip(orders, rdp) where value.isFinite {
            let epsilon = value - (logDelta + log(alpha)) / (alpha - 1) + log((alpha - 1) / alpha)
            if epsilon < best.epsilon { best = (epsilon, alpha) }
        }
        return (max(0, best.epsilon), best.order)
    }

    /// Throws PrivacyError(.invalidParameter) unless δ is in (0, 1).
    public static func validate(delta: Double) throws(PrivacyError) {
        guard delta.isFinite, delta > 0, delta < 1 else {
            throw PrivacyError(code: .invalidParameter, message: "delta must be in (0, 1), got \(delta)")
        }
    }
}
