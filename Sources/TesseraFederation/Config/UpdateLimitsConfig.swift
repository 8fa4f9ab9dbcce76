/// `update_limits:` — what the coordinator accepts from one site in a plaintext round.
///
/// ```yaml
/// update_limits:
///   max_weight: 10000          # the largest sample count an update is weighted by
///   max_update_norm: auto      # auto | none | a positive number (L2 norm of one update)
/// ```
///
/// A plaintext round sees every update, so one site could otherwise claim a billion samples or
/// send an update a million times larger than the others and take the round over. Secure
/// rounds are bounded by `secure_aggregation`'s `clip` and `max_weight` instead, and the
/// coordinator checks the decoded sum against both.
public struct UpdateLimitsConfig: Sendable, Hashable, Codable {
    /// How an update's L2 norm is bounded.
    public enum NormBound: Sendable, Hashable {
        /// `secure_aggregation.clip · √(parameters)`: the largest update a secure round can
        /// carry, so plaintext and secure runs of one file bound updates alike.
        case automatic
        /// Any finite update is accepted.
        case unbounded
        case limit(Double)
    }

    /// The largest sample count an update is weighted by; a site's count is also capped by the
    /// count it announced when it connected. Default 10,000 (the secure-aggregation default).
    public var maxWeight: Int
    /// Default `auto`.
    public var maxUpdateNorm: NormBound

    public init(maxWeight: Int = 10_000, maxUpdateNorm: NormBound = .automatic) {
        self.maxWeight = maxWeight
        self.maxUpdateNorm = maxUpdateNorm
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxWeight = "max_weight"
        case maxUpdateNorm = "max_update_norm"
    }

    public init(from decoder: any Decoder) throws {
        let (c, _) = try decoder.configSection(CodingKeys.self)
        let d = UpdateLimitsConfig()
        var bound = d.maxUpdateNorm
        if let text = try? c.decodeIfPresent(String.self, forKey: .maxUpdateNorm) {
            switch text {
            case "auto": bound = .automatic
            case "none": bound = .unbounded
            default:
                guard let value = Double(text) else {
                    throw ConfigError(
                        .invalidValue, at: ConfigPath.components(c.codingPath) + [.key("max_update_norm")],
                        "\"\(text)\" is not auto, none or a number; give the largest L2 norm of one site's update")
                }
                bound = .limit(value)
            }
        } else if c.contains(.maxUpdateNorm) {
            bound = .limit(try c.value(.maxUpdateNorm, default: 0.0))  // not a scalar: reports the type
        }
        self.init(maxWeight: try c.value(.maxWeight, default: d.maxWeight), maxUpdateNorm: bound)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(maxWeight, forKey: .maxWeight)
        switch maxUpdateNorm {
        case .automatic: try c.encode("auto", forKey: .maxUpdateNorm)
        case .unbounded: try c.encode("none", forKey: .maxUpdateNorm)
        case .limit(let value): try c.encode(value, forKey: .maxUpdateNorm)
        }
    }

    /// The norm bound of a model of `parameterCount` parameters; `nil` for none.
    public func resolvedNormBound(clip: Double, parameterCount: Int) -> Double? {
        switch maxUpdateNorm {
        case .automatic: clip * Double(parameterCount).squareRoot()
        case .unbounded: nil
        case .limit(let value): value
        }
    }

    func validate() throws(ConfigError) {
        let rules = ConfigRules("update_limits")
        try rules.check(
            maxWeight >= 1 && maxWeight <= Int(UInt32.max), "max_weight",
            "must lie in 1...\(UInt32.max), got \(maxWeight)")
        if case .limit(let value) = maxUpdateNorm { try rules.positive(value, "max_update_norm") }
    }
}
