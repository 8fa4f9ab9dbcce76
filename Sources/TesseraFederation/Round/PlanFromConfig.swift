extension ExperimentConfig {
    /// Validates the file and refuses what the round runtime cannot run yet: the check every
    /// runner (simulation, coordinator) makes before lowering the file to a plan.
    public func validateForRuntime() throws(ConfigError) {
        try validate()
    }

    /// Lowers a validated experiment file to the plan the coordinator executes.
    ///
    /// - Parameters:
    ///   - datasetName: the name participants offer their data under.
    ///   - architecture: the model, with its inputs and classes resolved against the data
    ///     (see ``ModelConfig/architecture(dataInputs:dataClasses:)``).
    public func federationPlan(datasetName: String, architecture: ModelArchitecture) -> FederationPlan {
        var plan = basePlan(datasetName: datasetName, architecture: architecture)
        if let privacy {
            // Validation resolved the budget already: running without the privacy the file asks
            // for is never an option.
            guard let budget = try? privacyBudget() else {
                preconditionFailure("privacy: validate the experiment before lowering it to a plan")
            }
            var adaptive: FederationPlan.Privacy.AdaptiveRule?
            if case .adaptive(let quantile, let rate, _, _) = privacy.clip {
                adaptive = .init(targetQuantile: quantile, learningRate: rate)
            }
            plan.privacy = FederationPlan.Privacy(
                mode: privacy.mode == .central ? .central : .distributed, noiseMultiplier: budget.noiseMultiplier,
                updateNoiseMultiplier: budget.updateNoiseMultiplier, countNoise: budget.countNoise,
                samplingRate: budget.samplingRate, delta: budget.delta, targetEpsilon: budget.targetEpsilon,
                onBudgetExhausted: privacy.onBudgetExhausted, initialClipNorm: privacy.clip.initialNorm,
                adaptive: adaptive)
        }
        return plan
    }

    private func basePlan(datasetName: String, architecture: ModelArchitecture) -> FederationPlan {
        let secure: FederationPlan.SecureAggregation? =
            secureAggregation.enabled
            ? {
                let s = secureAggregation
                let neighbourhood: FederationPlan.SecureAggregation.Neighbourhood =
                    switch s.neighbourhood {
                    case .auto: .automatic
                    case .complete: .complete
                    case .harary: s.degree.map { .harary(degree: $0) } ?? .automatic
                    }
                var threshold: FederationPlan.SecureAggregation.Threshold?
                if let t = s.threshold { threshold = .count(t) }
                if let f = s.thresholdFraction { threshold = .fraction(f) }
                return FederationPlan.SecureAggregation(
                    neighbourhood: neighbourhood, threshold: threshold, dropoutRate: s.dropoutRate,
                    corruptionRate: s.corruptionRate, clip: s.clip, bits: s.bits,
                    maxWeight: UInt32(clamping: s.maxWeight), activeAdversary: s.activeAdversary)
            }() : nil
        let d = deadlines
        return FederationPlan(
            experimentID: name, rounds: rounds, datasetName: datasetName, architecture: architecture,
            selection: FederationPlan.Selection(
                fraction: cohort.fraction, minimum: cohort.minimum, maximum: cohort.maximum,
                overSelection: cohort.overSelection),
            deadlines: FederationPlan.Deadlines(
                selection: d.selection, training: d.broadcast + d.train + d.advertiseKeys, shareKeys: d.shareKeys,
                maskedInput: d.maskedInputCollection, consistencyCheck: d.consistencyCheck, unmasking: d.unmasking,
                evaluation: d.evaluate),
            training: localTraining.trainingTask(seed: seed), secureAggregation: secure,
            evaluationEvery: evaluation.every, evaluationFraction: evaluation.fraction,
            evaluationQuorum: evaluation.quorum,
            updateLimits: FederationPlan.UpdateLimits(
                maxWeight: updateLimits.maxWeight,
                maxUpdateNorm: updateLimits.resolvedNormBound(
                    clip: secureAggregation.clip, parameterCount: architecture.parameterCount ?? Int.max)),
            onRoundFailure: onRoundFailure == .stop ? .stop : .continue, seed: seed)
    }
}
