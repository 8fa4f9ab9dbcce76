#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Arithmetic on logarithms of non-negative numbers: the subsampled mechanisms' moments overflow a
/// `Double` long before their logarithms do (α = 256 at small noise), so every sum is taken here.
enum LogSpace {
    /// log(eˣ + eʸ).
    static func add(_ x: Double, _ y: Double) -> Double {
        let (high, low) = x >= y ? (x, y) : (y, x)
        if low == -.infinity { return high }
        return high + log1p(exp(low - high))
    }

    /// log(eˣ − eʸ), or nil when eʸ > eˣ: the callers treat that as lost precision, not as a value.
    static func subtract(_ x: Double, _ y: Double) -> Double? {
        if y == -.infinity { return x }
        if x < y { return nil }
        if x == y { return -.infinity }
        return y + log(expm1(x - y))
    }

    /// log erfc(x). erfc underflows near x = 27, so the tail uses its asymptotic (Laurent) series,
    /// whose first omitted term is below 1e-12 relative from x = 25 on.
    static func logErfc(_ x: Double) -> Double {
        if x <= 25 { return log(erfc(x)) }
        let inverseSquare = 1 / (x * x)
        let series =
            -0.5 * inverseSquare + 0.625 * inverseSquare * inverseSquare
            - 37.0 / 24.0 * pow(inverseSquare, 3) + 353.0 / 64.0 * pow(inverseSquare, 4)
        return -0.5 * log(Double.pi) - log(x) - x * x + series
    }

    /// log(y·log base) with 0·log 0 = 0, as in (1 − q)⁰ = 1 at q = 1.
    static func power(_ logBase: Double, _ exponent: Double) -> Double {
        exponent == 0 ? 0 : exponent * logBase
    }

    /// A streaming log-sum-exp: one `exp` per term, no buffer, exact rescaling when the maximum moves.
    struct Sum {
        private var maximum = -Double.infinity
        private var scaled = 0.0

        mutating func add(_ term: Double) {
            if term == -.infinity { return }
            if term <= maximum {
                scaled += exp(term - maximum)
            } else {
                scaled = scaled * exp(maximum - term) + 1
                maximum = term
            }
        }

        var value: Double { maximum == -.infinity ? -.infinity : maximum + log(scaled) }
    }
}
