import Foundation
import Testing

@testable import TesseraData
@testable import TesseraTensor

@Suite struct FedProxSyntheticTests {
    @Test func devicesHaveThePapersDimensions() throws {
        let devices = try FedProxSynthetic.generate(.synthetic(alpha: 1, beta: 1), seed: 1)
        #expect(devices.count == 30)
        for device in devices {
            #expect(device.dataset.sampleShape == [60])
            #expect(device.dataset.classCount == 10)
            #expect(device.dataset.count >= 50)
            #expect(device.weights.shape == [60, 10])
            #expect(device.bias.shape == [10])
            #expect(device.featureMean.shape == [60])
        }
        #expect(try FedProxSynthetic.generate(.synthetic(alpha: 0.5, beta: 0.5, devices: 7), seed: 1).count == 7)
    }

    @Test func labelsAreTheArgmaxOfEachDevicesModel() throws {
        let devices = try FedProxSynthetic.generate(.synthetic(alpha: 0.5, beta: 0.5, devices: 5), seed: 2)
        for device in devices {
            let n = device.dataset.count
            for i in 0..<n {
                var best = 0
                var bestLogit = -Float.infinity
                for c in 0..<10 {
                    var logit = device.bias[c]
                    for j in 0..<60 { logit += device.dataset.features[i, j] * device.weights[j, c] }
                    if logit > bestLogit {
                        bestLogit = logit
                        best = c
                    }
                }
                #expect(Int(device.dataset.labels[i]) == best)
            }
        }
    }

    @Test func sameSeedSameDataOtherSeedOtherData() throws {
        let a = try FedProxSynthetic.datasets(.synthetic(alpha: 1, beta: 1, devices: 6), seed: 7)
        let b = try FedProxSynthetic.datasets(.synthetic(alpha: 1, beta: 1, devices: 6), seed: 7)
        let c = try FedProxSynthetic.datasets(.synthetic(alpha: 1, beta: 1, devices: 6), seed: 8)
        #expect(zip(a, b).allSatisfy { $0.features == $1.features && $0.labels == $1.labels })
        #expect(a[0].features != c[0].features)
        // Adding devices leaves the existing ones unchanged (independent streams).
        let more = try FedProxSynthetic.datasets(.synthetic(alpha: 1, beta: 1, devices: 8), seed: 7)
        #expect(more[5].features == a[5].features)
    }

    /// The heterogeneity the benchmark exists for: with α = β = 1 devices disagree about
    /// labels; Synthetic-IID shares one model and one input distribution.
    @Test func nonIIDDevicesDifferWhileTheIIDVariantSharesTheModel() throws {
        func labelSummary(_ devices: [FedProxSynthetic.Device]) -> PartitionSummary {
            var summary = PartitionSummary(scheme: "synthetic", clientIndices: [], labels: nil, classCount: nil)
            summary.sizes = devices.map(\.dataset.count)
            summary.labelHistograms = devices.map { $0.dataset.classHistogram() }
            return summary
        }
        let heterogeneous = try FedProxSynthetic.generate(.synthetic(alpha: 1, beta: 1), seed: 11)
        let iid = try FedProxSynthetic.generate(.iid(), seed: 11)

        #expect(Set(heterogeneous.map(\.weights)).count == 30)
        #expect(Set(iid.map(\.weights)).count == 1)
        #expect(Set(iid.map(\.bias)).count == 1)
        #expect(iid.allSatisfy { $0.featureMean.scalars.allSatisfy { $0 == 0 } })

        let skewed = labelSummary(heterogeneous)
        let control = labelSummary(iid)
        #expect(skewed.meanLabelDistanceFromGlobal > 0.4, "\(skewed)")
        #expect(control.meanLabelDistanceFromGlobal < 0.2, "\(control)")
        #expect(skewed.meanNormalizedLabelEntropy < control.meanNormalizedLabelEntropy - 0.2)
    }

    /// Device sizes follow the reference generator: ⌊exp(N(4, 2))⌋ + 50, so the median is
    /// about e^4 + 50 ≈ 105 and some devices are many times larger.
    @Test func deviceSizesFollowTheLogNormal() throws {
        let configuration = FedProxSynthetic.Configuration(
            devices: 2000, dimension: 2, classes: 2, maximumSamples: 400)
        let sizes = try FedProxSynthetic.datasets(configuration, seed: 5).map(\.count).sorted()
        let median = Double(sizes[1000] - 50)
        #expect(abs(median - exp(4)) < 0.15 * exp(4), "median − 50 = \(median)")
        #expect(sizes.first! >= 50)
        // P(size ≥ 400) = P(N(4, 2) ≥ ln 350) = P(Z ≥ 0.929) ≈ 0.176 before the cap.
        let capped = Double(sizes.filter { $0 == 400 }.count) / 2000
        #expect(abs(capped - 0.176) < 0.03, "\(capped)")
    }

    @Test func fixedDeviceSizesOverrideTheLogNormal() throws {
        let devices = try FedProxSynthetic.datasets(.iid(devices: 4, samplesPerDevice: 37), seed: 1)
        #expect(devices.map(\.count) == [37, 37, 37, 37])
    }

    @Test func rejectsNonsenseConfigurations() {
        expectDataError(.invalidArgument) {
            _ = try FedProxSynthetic.generate(FedProxSynthetic.Configuration(devices: 0), seed: 1)
        }
        expectDataError(.invalidArgument) {
            _ = try FedProxSynthetic.generate(FedProxSynthetic.Configuration(alpha: -1), seed: 1)
        }
    }
}

@Suite struct ClinicalRiskTests {
    @Test func sitesHaveTheDocumentedColumnsSizesAndBinaryLabels() {
        let sites = ClinicalRisk.generateSites(seed: 2017)
        #expect(sites.count == 5)
        for (profile, site) in zip(ClinicalRisk.quickstartSites, sites) {
            #expect(site.count == profile.patients)
            #expect(site.featureNames == ClinicalRisk.featureNames)
            #expect(site.featuresPerSample == 11)
            #expect(site.classCount == 2)
            #expect(site.labels.scalars.allSatisfy { $0 == 0 || $0 == 1 })
        }
    }

    @Test func generationIsDeterministicPerSeed() {
        let a = ClinicalRisk.generateSites(seed: 1)
        let b = ClinicalRisk.generateSites(seed: 1)
        let c = ClinicalRisk.generateSites(seed: 2)
        #expect(zip(a, b).allSatisfy { $0.features == $1.features && $0.labels == $1.labels })
        #expect(a[0].features != c[0].features)
        // A site's data does not depend on the sites listed after it.
        let firstTwo = ClinicalRisk.generateSites(Array(ClinicalRisk.quickstartSites.prefix(2)), seed: 1)
        #expect(firstTwo[1].features == a[1].features)
    }

    @Test func profilesForAnyNumberOfSitesCycleTheHospitalTypes() {
        let profiles = ClinicalRisk.siteProfiles(count: 7, patientsPerSite: 120)
        #expect(profiles.map(\.name) == (1...7).map { "site-\($0)" })
        #expect(profiles.allSatisfy { $0.patients == 120 })
        #expect(profiles[5].ageMean == ClinicalRisk.quickstartSites[0].ageMean)
        let sites = ClinicalRisk.generateSites(profiles, seed: 4)
        #expect(sites[5].count == 120)
        #expect(sites[5].features != sites[0].features)
    }

    private func columnMean(_ data: Dataset, _ name: String) -> Double {
        let j = ClinicalRisk.featureNames.firstIndex(of: name)!
        let w = data.featuresPerSample
        return (0..<data.count).reduce(0.0) { $0 + Double(data.features.scalars[$1 * w + j]) } / Double(data.count)
    }

    @Test func sitesDifferInPopulationAndBaseRate() {
        let sites = ClinicalRisk.generateSites(seed: 2017)
        let age = sites.map { columnMean($0, "age") }
        // The geriatric centre (site-3) is ~25 years older than the suburban hospital (site-4).
        #expect(age[2] - age[3] > 15, "\(age)")
        #expect(columnMean(sites[4], "systolic_bp") > columnMean(sites[3], "systolic_bp") + 5)
        #expect(columnMean(sites[1], "bmi") > columnMean(sites[2], "bmi") + 2)
        let rates = sites.map { Double($0.labels.scalars.reduce(0, +)) / Double($0.count) }
        #expect(rates.allSatisfy { $0 > 0.05 && $0 < 0.40 }, "\(rates)")
        #expect(rates[2] > rates[3] + 0.05, "\(rates)")
    }

    @Test func featuresArePlausibleAndPredictTheOutcome() {
        let site = ClinicalRisk.generate(site: ClinicalRisk.quickstartSites[0], seed: 3)
        let w = site.featuresPerSample
        var positiveRisk = 0.0
        var negativeRisk = 0.0
        var positives = 0
        for i in 0..<site.count {
            let row = Array(site.features.scalars[(i * w)..<((i + 1) * w)])
            #expect(row[0] >= 18 && row[0] <= 100)
            #expect(row[3] >= 16 && row[3] <= 60)
            #expect(row[4] >= 80 && row[4] <= 220)
            #expect(row[7] >= 0.3 && row[7] <= 8)
            #expect(row[9] >= 1)
            let risk = ClinicalRisk.risk(row, site: ClinicalRisk.quickstartSites[0])
            if site.labels[i] == 1 {
                positiveRisk += risk
                positives += 1
            } else {
                negativeRisk += risk
            }
        }
        // The ground-truth risk separates the outcomes: readmitted patients had higher risk.
        let meanPositive = positiveRisk / Double(positives)
        let meanNegative = negativeRisk / Double(site.count - positives)
        #expect(meanPositive > meanNegative + 0.1, "\(meanPositive) vs \(meanNegative)")
    }
}
