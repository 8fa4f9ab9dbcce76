/// The noise a budget allows, found by bisection on the accountant itself, so calibration and
/// accounting can never disagree.
public enum NoiseCalibration {
    /// The searched range of noise multipliers. Below 0.01 no realistic (ε, δ) is met (and the
    /// Gaussian's RDP stops meaning anything useful); above 10⁴ the noise swamps any update.
    public static let searchRange: ClosedRange<Double> = 0.01...10_000

    /// The smallest noise multiplier z (bisection over a bracketing range, to 1e-5 relative) such that `rounds`
    /// applications of mechanism(z) at rate q spend at most targetEpsilon at delta. Throws .invalidParameter
    /// for bad inputs and .unreachableTarget when even the largest z searched cannot reach it.
    ///
    /// ε is decreasing in z, so the bisection keeps a z that meets the target (the upper end) and
    /// one that does not; the upper end is returned. A target met even at the bottom of
    /// ``searchRange`` returns that bottom.
    public static func noiseMultiplier(
        targetEpsilon: Double, delta: Double, samplingRate: Double, rounds: Int,
        mechanism: (Double) throws(PrivacyError) -> PrivacyMechanism = { .gaussian(noiseMultiplier: $0) }
    ) throws(PrivacyError) -> Double {
        guard targetEpsilon.isFinite, targetEpsilon > 0 else {
            throw PrivacyError(
                code: .invalidParameter,
                message: "target_epsilon must be a positive finite number, got \(targetEpsilon)")
        }
        try RDPConversion.validate(delta: delta)
        try PrivacyMechanism.validate(samplingRate: samplingRate)
        guard samplingRate > 0 else {
            throw PrivacyError(
                code: .invalidParameter,
                message: "the sampling rate must be above 0 to calibrate noise (no site would take part)")
        }
        guard rounds >= 1 else {
            throw PrivacyError(code: .invalidParameter, message: "rounds must be at least 1, got \(rounds)")
        }

        func spends(_ z: Double) throws(PrivacyError) -> Double {
            let candidate = try mechanism(z)
            try candidate.validate()
            let accountant = PrivacyAccountant().composing(candidate, samplingRate: samplingRate, steps: rounds)
            return accountant.epsilon(delta: delta)
        }

        var low = searchRange.lowerBound
        var high = searchRange.upperBound
        let highest = try spends(high)
        guard highest <= targetEpsilon else {
            throw PrivacyError(
                code: .unreachableTarget,
                message: "no noise multiplier up to \(short(high)) reaches ε = \(short(targetEpsilon)) at δ = \(delta) "
                    + "over \(rounds) rounds at sampling rate \(short(samplingRate)) (the largest spends "
                    + "ε = \(short(highest))); raise the target or δ, or run fewer rounds or a lower sampling rate")
        }
        if try spends(low) <= targetEpsilon { return low }
        // Geometric bisection: the tolerance is relative, and the bracket spans six decades.
        while (high - low) > 1e-5 * high {
            let middle = (low * high).squareRoot()
            if try spends(middle) <= targetEpsilon { high = middle } else { low = middle }
        }
        return high
    }

    /// A number for a message: integers without ".0", others to four significant decimals.
    private static func short(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int(value)) }
        let rounded = (value * 1e4).rounded() / 1e4
        return String(rounded == 0 ? value : rounded)
    }
}
