/// Composes rounds (RDP adds over rounds at each order). Codable: the coordinator and each site persist it.
///
/// The accountant keeps only the RDP curve, not the history: composition is a sum at each order,
/// and the curve is all that the (ε, δ) conversion needs. Decoding checks the curve, so a damaged
/// ledger is refused rather than read as a smaller spend.
public struct PrivacyAccountant: Sendable, Hashable, Codable {
    public private(set) var orders: [Double]
    public private(set) var rdp: [Double]
    public private(set) var steps: Int

    public init(orders: [Double] = RDPOrders.standard) {
        precondition(!orders.isEmpty, "the accountant needs at least one order")
        precondition(orders.allSatisfy { $0 > 1 && $0.isFinite }, "RDP orders are finite and above 1")
        self.orders = orders
        self.rdp = orders.map { _ in 0 }
        self.steps = 0
    }

    /// Adds `steps` applications of `mechanism`, each on a Poisson sample at `samplingRate`. The
    /// per-step curve is computed once and multiplied, so 10,000 rounds cost as much as one.
    public mutating func compose(_ mechanism: PrivacyMechanism, samplingRate: Double, steps: Int = 1) {
        precondition(steps >= 0, "a number of rounds is not negative")
        guard steps > 0 else { return }
        let perStep = mechanism.subsampledRDP(samplingRate: samplingRate, orders: orders)
        let count = Double(steps)
        for index in rdp.indices { rdp[index] += count * perStep[index] }
        self.steps += steps
    }

    /// A copy with the steps composed (what-if checks before a round).
    public func composing(_ mechanism: PrivacyMechanism, samplingRate: Double, steps: Int = 1) -> PrivacyAccountant {
        var copy = self
        copy.compose(mechanism, samplingRate: samplingRate, steps: steps)
        return copy
    }

    public func epsilon(delta: Double) -> Double {
        spent(delta: delta).epsilon
    }

    /// ε at δ and the order that gives it (Balle et al. 2020 conversion, ``RDPConversion``).
    public func spent(delta: Double) -> (epsilon: Double, order: Double) {
        RDPConversion.epsilon(orders: orders, rdp: rdp, delta: delta)
    }

    private enum CodingKeys: String, CodingKey {
        case orders, rdp, steps
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let orders = try container.decode([Double].self, forKey: .orders)
        let rdp = try container.decode([Double].self, forKey: .rdp)
        let steps = try container.decode(Int.self, forKey: .steps)
        func corrupted(_ key: CodingKeys, _ what: String) -> DecodingError {
            .dataCorruptedError(forKey: key, in: container, debugDescription: "privacy ledger: \(what)")
        }
        guard !orders.isEmpty, orders.allSatisfy({ $0 > 1 && $0.isFinite }) else {
            throw corrupted(.orders, "orders must be a non-empty list of finite numbers above 1")
        }
        guard rdp.count == orders.count else {
            throw corrupted(.rdp, "\(rdp.count) RDP values for \(orders.count) orders")
        }
        // +∞ is a legitimate spend (a mechanism with no privacy at some order); NaN and negatives are not.
        guard rdp.allSatisfy({ $0 >= 0 }) else { throw corrupted(.rdp, "RDP values must be non-negative numbers") }
        guard steps >= 0 else { throw corrupted(.steps, "steps must not be negative, got \(steps)") }
        self.orders = orders
        self.rdp = rdp
        self.steps = steps
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(orders, forKey: .orders)
        try container.encode(rdp, forKey: .rdp)
        try container.encode(steps, forKey: .steps)
    }
}
