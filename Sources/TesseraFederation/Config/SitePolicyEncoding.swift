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
    }
}
