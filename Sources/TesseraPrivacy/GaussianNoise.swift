import Foundation

/// Continuous Gaussian noise for central DP, where the coordinator adds N(0, σ²C²) once per round
/// to the sum of clipped updates.
///
/// Normals come from the Box–Muller transform of two 53-bit uniforms rather than a Ziggurat:
/// the transform is exact up to Double rounding, needs no tables and no tail special case, and
/// its cost (one log, one square root, one sine/cosine pair per two normals) is irrelevant for
/// noise drawn once per round. The 53-bit uniforms bound |z| by √(2·53·ln 2) ≈ 8.57, a tail of
/// probability below 10⁻¹⁷.
public enum GaussianNoise {
    /// A standard normal from 53-bit uniforms (Box–Muller; the second value of the pair is dropped).
    public static func standardNormal<G: RandomNumberGenerator>(using generator: inout G) -> Double {
        boxMuller(generator.next(), generator.next()).0
    }

    /// Adds N(0, standardDeviation²) to every value, using both normals of each Box–Muller pair.
    public static func add<G: RandomNumberGenerator>(
        to values: inout [Double], standardDeviation: Double, using generator: inout G
    ) {
        precondition(
            standardDeviation >= 0 && standardDeviation.isFinite, "the noise is validated before it reaches here")
        guard standardDeviation > 0 else { return }
        var index = 0
        while index < values.count {
            let (first, second) = boxMuller(generator.next(), generator.next())
            values[index] += standardDeviation * first
            if index + 1 < values.count { values[index + 1] += standardDeviation * second }
            index += 2
        }
    }

    /// Two independent standard normals from two random words: `u` in (0, 1] (so its log is
    /// finite) and `v` in [0, 1).
    @inline(__always)
    static func boxMuller(_ first: UInt64, _ second: UInt64) -> (Double, Double) {
        let u = Double((first >> 11) + 1) * 0x1.0p-53
        let v = Double(second >> 11) * 0x1.0p-53
        let radius = (-2 * log(u)).squareRoot()
        let angle = 2 * Double.pi * v
        return (radius * cos(angle), radius * sin(angle))
    }
}
