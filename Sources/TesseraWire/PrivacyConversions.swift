import TesseraFederation
import TesseraPrivacy

// MARK: - Differential privacy of a training task

extension Tessera_V1_RoundPrivacy {
    init(_ privacy: RoundPrivacy) throws(WireError) {
        self.init()
        mode = privacy.mode == .central ? .central : .distributed
        clipNorm = privacy.clipNorm
        noiseMultiplier = privacy.noiseMultiplier
        delta = privacy.delta
        samplingRate = privacy.samplingRate
        reportsWithinClip = privacy.reportsWithinClip
        rotationSeed = privacy.rotationSeed
        if let distributed = privacy.distributed {
            var wire = Tessera_V1_DistributedSkellam()
            wire.dimension = try checkedUInt64(distributed.dimension, wireField("DistributedSkellam", "dimension"))
            wire.clipNorm = distributed.clipNorm
            wire.scale = distributed.scale
            wire.squaredNormBound = distributed.squaredNormBound
            wire.perSiteMu = distributed.perSiteMu
            wire.minimumSurvivors = UInt32(clamping: distributed.minimumSurvivors)
            wire.bitScale = distributed.bitScale
            wire.ringBits = UInt32(clamping: distributed.ringBits)
            wire.maximumCohort = UInt32(clamping: distributed.maximumCohort)
            self.distributed = wire
        }
    }
}

extension RoundPrivacy {
    /// The largest model a distributed-noise task may announce: the model's own parameter
    /// limit applies too (site policy), this only keeps the number a sane `Int`.
    static let maximumDimension: UInt64 = 1 << 31

    /// Reads a task's privacy parameters. Every number is checked for its domain here; the
    /// site policy then checks them against the round and its own budget.
    init(_ wire: Tessera_V1_RoundPrivacy) throws(WireError) {
        let f = { (name: String) in wireField("RoundPrivacy", name) }
        let mode: Mode
        switch wire.mode {
        case .central: mode = .central
        case .distributed: mode = .distributed
        default:
            throw WireError(
                code: .unknownEnumValue,
                message: "the privacy mode \(wire.mode.rawValue) is neither central nor distributed",
                field: f("mode"))
        }
        try Self.positive(wire.clipNorm, f("clip_norm"))
        try Self.positive(wire.noiseMultiplier, f("noise_multiplier"))
        guard wire.delta > 0, wire.delta < 1 else {
            throw WireError.outOfRange(f("delta"), "δ must lie in (0, 1), got \(wire.delta)")
        }
        guard wire.samplingRate > 0, wire.samplingRate <= 1 else {
            throw WireError.outOfRange(
                f("sampling_rate"), "the sampling rate must lie in (0, 1], got \(wire.samplingRate)")
        }
        var distributed: DistributedSkellam?
        if wire.hasDistributed {
            let d = wire.distributed
            let g = { (name: String) in wireField("DistributedSkellam", name) }
            guard d.dimension >= 1, d.dimension <= Self.maximumDimension else {
                throw WireError.outOfRange(
                    g("dimension"), "must lie in 1...\(Self.maximumDimension), got \(d.dimension)")
            }
            try Self.positive(d.clipNorm, g("clip_norm"))
            try Self.positive(d.scale, g("scale"))
            try Self.positive(d.squaredNormBound, g("squared_norm_bound"))
            try Self.positive(d.perSiteMu, g("per_site_mu"))
            guard d.minimumSurvivors >= 1, d.minimumSurvivors <= 65_535 else {
                throw WireError.outOfRange(g("minimum_survivors"), "must lie in 1...65535, got \(d.minimumSurvivors)")
            }
            guard d.bitScale >= 0, d.bitScale <= 1 << 40, d.bitScale % 2 == 0 else {
                throw WireError.outOfRange(g("bit_scale"), "must be an even number in 0...2^40, got \(d.bitScale)")
            }
            guard d.ringBits == 32 else {
                throw WireError.outOfRange(g("ring_bits"), "secure aggregation sums 32-bit words; got \(d.ringBits)")
            }
            guard d.maximumCohort >= d.minimumSurvivors, d.maximumCohort <= 65_535 else {
                throw WireError.outOfRange(
                    g("maximum_cohort"), "must lie in minimum_survivors...65535, got \(d.maximumCohort)")
            }
            let parameters = DistributedSkellam(
                dimension: Int(d.dimension), clipNorm: d.clipNorm, scale: d.scale, squaredNormBound: d.squaredNormBound,
                perSiteMu: d.perSiteMu, minimumSurvivors: Int(d.minimumSurvivors), maximumCohort: Int(d.maximumCohort),
                bitScale: d.bitScale, ringBits: Int(d.ringBits))
            do {
                try parameters.validate()
            } catch {
                throw WireError.outOfRange(wireField("RoundPrivacy", "distributed"), error.message)
            }
            distributed = parameters
        }
        self.init(
            mode: mode, clipNorm: wire.clipNorm, noiseMultiplier: wire.noiseMultiplier, delta: wire.delta,
            samplingRate: wire.samplingRate, reportsWithinClip: wire.reportsWithinClip, distributed: distributed,
            rotationSeed: wire.rotationSeed)
    }

    private static func positive(_ value: Double, _ field: String) throws(WireError) {
        guard value.isFinite, value > 0 else {
            throw WireError.outOfRange(field, "must be positive and finite, got \(value)")
        }
    }
}
