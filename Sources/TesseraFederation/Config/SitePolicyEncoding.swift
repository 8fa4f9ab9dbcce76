extension SitePolicy: Encodable {
    /// Every key with its value, defaults included, so an experiment's ``ExperimentConfig/configHash``
    /// changes with what its simulated sites enforce.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(requireSecureAggregation, forKey: .requireSecureAggregation)
        try c.encode(requireActiveAdversaryProtection, forKey: .requireActiveAdversaryProtection)
        try c.encode(minimumCohort, forKey: .minimumCohort)
        try c.encode(maxCorruptionRate, forKey: .maxCorruptionRate)
        try c.encode(maxDropoutRate, forKey: .maxDropoutRate)
        try c.encode(maxParameters, forKey: .maxParameters)
        try c.encode(maxLayerWidth, forKey: .maxLayerWidth)
        try c.encode(maxEpochs, forKey: .maxEpochs)
        try c.encode(maxBatchSize, forKey: .maxBatchSize)
        try c.encode(maxModelBytes, forKey: .maxModelBytes)
        try c.encode(shareMetrics.rawValue, forKey: .shareMetrics)
        try c.encode(maxEvaluationsPerRound, forKey: .maxEvaluationsPerRound)
        // The privacy keys came later: written only when they differ from their defaults, so the
        // hashes of experiments that predate them do not change.
        let d = SitePolicy()
        if requireDifferentialPrivacy != d.requireDifferentialPrivacy {
            try c.encode(requireDifferentialPrivacy, forKey: .requireDifferentialPrivacy)
        }
        try c.encodeIfPresent(maxEpsilon, forKey: .maxEpsilon)
        if privacyDelta != d.privacyDelta { try c.encode(privacyDelta, forKey: .privacyDelta) }
        if trustCentralNoise != d.trustCentralNoise { try c.encode(trustCentralNoise, forKey: .trustCentralNoise) }
    }
}
