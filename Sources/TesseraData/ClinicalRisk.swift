import Foundation
import TesseraTensor

/// A synthetic tabular task for the quick start: will an adult inpatient be readmitted within
/// 30 days of discharge?
///
/// Why synthetic, and why this task: the quick start must show a realistic federation —
/// hospitals whose patients differ — without shipping a single real record. Readmission risk
/// is a classic tabular clinical model; it has a binary outcome, a dozen routinely collected
/// features and a base rate (~10–20%) that really does vary between hospitals. None of the
/// numbers below are fitted to real data: they are plausible magnitudes chosen so that the
/// features matter in a clinically sensible direction and a logistic model can learn them.
///
/// **Columns** (units; how they are drawn for a patient of age `a`):
///
/// | column | unit | generation |
/// |---|---|---|
/// | `age` | years, integer, 18–100 | `N(site mean, site sd)` |
/// | `sex_male` | 0/1 | Bernoulli(site fraction) |
/// | `smoker` | 0/1 | Bernoulli(site rate) |
/// | `bmi` | kg/m², 1 decimal, 16–60 | `N(site mean, site sd)` |
/// | `systolic_bp` | mmHg, integer, 80–220 | `112 + 0.45(a−40) + 0.6(bmi−27) + site shift + N(0, 14)` |
/// | `heart_rate` | beats/min, integer, 40–150 | `N(76 + 4·smoker, 11)` |
/// | `hba1c` | %, 1 decimal, 4–14 | `N(7.6, 1.2)` if diabetic else `N(5.4, 0.35)`; diabetic with probability `σ(−2.4 + 0.035(a−55) + 0.12(bmi−28))` |
/// | `creatinine` | mg/dL, 2 decimals, 0.3–8 | log-normal around `0.8 + 0.006(a−40) + 0.15·male + 0.2·diabetic`, times the site's lab calibration |
/// | `prior_admissions` | count in the last 12 months, 0–15 | Poisson(`0.35 · care intensity · exp(0.02(a−60) + 0.4·diabetic + 0.3·[creatinine > 1.5])`) |
/// | `length_of_stay` | days of the index stay, ≥ 1 | `1 + Poisson(3.2 · care intensity · exp(0.012(a−60)))` |
/// | `num_medications` | count at discharge, 0–30 | Poisson(`3 + 0.06(a−40) + 2·diabetic + 0.8·prior_admissions`) |
/// | `readmitted_30d` | 0/1, **the label** | Bernoulli(`σ(logit)`), see ``intercept`` and ``coefficients`` |
///
/// **Ground truth.** The label depends on the *recorded* (rounded) features through
/// `logit = intercept + site.baseRateShift + Σ_j coefficients[j] · (x_j − reference[j])`, so a
/// logistic regression is the right model class, and the per-site shift is the part no
/// feature explains (discharge practice, community follow-up).
///
/// **Site shift.** ``SiteProfile`` sets each hospital's age mix, sex ratio, BMI, smoking rate,
/// blood-pressure offset, creatinine lab calibration, care intensity (admissions and length of
/// stay), base-rate shift and size: covariate shift, label shift and quantity skew at once,
/// as between real hospitals.
public enum ClinicalRisk {
    /// The feature columns, in order.
    public static let featureNames = [
        "age", "sex_male", "smoker", "bmi", "systolic_bp", "heart_rate", "hba1c", "creatinine",
        "prior_admissions", "length_of_stay", "num_medications",
    ]
    /// The label column.
    public static let labelName = "readmitted_30d"
    /// Decimal places each feature is recorded with (and written to CSV with).
    public static let decimals = [0, 0, 0, 1, 0, 0, 1, 2, 0, 0, 0]

    /// The log-odds of readmission for a reference patient at a site with no shift.
    public static let intercept = -1.9
    /// The reference value each feature is centred on in the ground-truth logit.
    public static let reference: [Double] = [65, 0.5, 0, 28, 130, 75, 6, 1, 0, 4, 6]
    /// The ground-truth log-odds change per unit of each feature (per year of age, per mmHg…).
    public static let coefficients: [Double] = [
        0.025,  // age: older patients are readmitted more
        0.15,  // sex_male
        0.35,  // smoker
        0.02,  // bmi
        0.010,  // systolic_bp
        0.012,  // heart_rate
        0.30,  // hba1c: poor glycaemic control
        0.70,  // creatinine: renal impairment is a strong risk factor
        0.38,  // prior_admissions: the strongest single predictor in readmission models
        0.06,  // length_of_stay
        0.04,  // num_medications: polypharmacy
    ]

    /// How one hospital's population differs from the others.
    public struct SiteProfile: Sendable, Hashable {
        /// A short identifier, used as the file name (`site-1`).
        public var name: String
        /// What kind of hospital this stands for (documentation only).
        public var summary: String
        /// The number of patients.
        public var patients: Int
        public var ageMean: Double
        public var ageSD: Double
        public var maleFraction: Double
        public var smokerRate: Double
        public var bmiMean: Double
        public var bmiSD: Double
        /// Added to every systolic blood pressure (mmHg): case mix or measurement protocol.
        public var systolicShift: Double
        /// Multiplies every creatinine value: a lab whose assay reads high or low.
        public var creatinineCalibration: Double
        /// Multiplies the expected prior admissions and length of stay.
        public var careIntensity: Double
        /// Added to the log-odds of readmission: what the features do not explain.
        public var baseRateShift: Double

        public init(
            name: String, summary: String = "", patients: Int, ageMean: Double, ageSD: Double,
            maleFraction: Double, smokerRate: Double, bmiMean: Double, bmiSD: Double, systolicShift: Double = 0,
            creatinineCalibration: Double = 1, careIntensity: Double = 1, baseRateShift: Double = 0
        ) {
            self.name = name
            self.summary = summary
            self.patients = patients
            self.ageMean = ageMean
            self.ageSD = ageSD
            self.maleFraction = maleFraction
            self.smokerRate = smokerRate
            self.bmiMean = bmiMean
            self.bmiSD = bmiSD
            self.systolicShift = systolicShift
            self.creatinineCalibration = creatinineCalibration
            self.careIntensity = careIntensity
            self.baseRateShift = baseRateShift
        }
    }

    /// The five hospitals of the quick start: different populations, base rates and sizes
    /// (350 to 1,800 patients).
    public static let quickstartSites: [SiteProfile] = [
        SiteProfile(
            name: "site-1", summary: "urban teaching hospital", patients: 1400, ageMean: 58, ageSD: 16,
            maleFraction: 0.52, smokerRate: 0.22, bmiMean: 28, bmiSD: 6, careIntensity: 1.2, baseRateShift: 0.1),
        SiteProfile(
            name: "site-2", summary: "rural community hospital", patients: 600, ageMean: 67, ageSD: 13,
            maleFraction: 0.48, smokerRate: 0.28, bmiMean: 30.5, bmiSD: 6, creatinineCalibration: 1.08,
            careIntensity: 0.9),
        SiteProfile(
            name: "site-3", summary: "geriatric centre", patients: 900, ageMean: 77, ageSD: 7,
            maleFraction: 0.42, smokerRate: 0.10, bmiMean: 26.5, bmiSD: 5, careIntensity: 1.1, baseRateShift: 0.25),
        SiteProfile(
            name: "site-4", summary: "suburban general hospital", patients: 1800, ageMean: 52, ageSD: 15,
            maleFraction: 0.50, smokerRate: 0.16, bmiMean: 27.5, bmiSD: 5, creatinineCalibration: 0.95,
            careIntensity: 0.8, baseRateShift: -0.3),
        SiteProfile(
            name: "site-5", summary: "cardiac specialty clinic", patients: 350, ageMean: 65, ageSD: 11,
            maleFraction: 0.64, smokerRate: 0.25, bmiMean: 29, bmiSD: 5, systolicShift: 8, careIntensity: 1.0,
            baseRateShift: 0.1),
    ]

    /// `count` site profiles for a simulated federation of any size: the five quick-start
    /// hospital types in turn (site 6 is another urban teaching hospital, and so on), named
    /// `site-1`… and optionally all of `patientsPerSite` patients. Sites of the same type still
    /// differ in their data, because each site has its own random stream.
    public static func siteProfiles(count: Int, patientsPerSite: Int? = nil) -> [SiteProfile] {
        (0..<max(0, count)).map { k in
            var profile = quickstartSites[k % quickstartSites.count]
            profile.name = "site-\(k + 1)"
            if let patientsPerSite { profile.patients = patientsPerSite }
            return profile
        }
    }

    /// The readmission probability of one recorded patient (features in ``featureNames``
    /// order) at `site`: the ground truth a perfect model would learn.
    public static func risk(_ features: [Float], site: SiteProfile) -> Double {
        precondition(features.count == featureNames.count, "expected \(featureNames.count) features")
        var logit = intercept + site.baseRateShift
        for j in coefficients.indices { logit += coefficients[j] * (Double(features[j]) - reference[j]) }
        return 1 / (1 + exp(-logit))
    }

    /// Generates one site's patients; deterministic for a seed.
    public static func generate(site: SiteProfile, seed: UInt64) -> Dataset {
        var rng = TesseraRandom(seed: seed)
        let n = max(0, site.patients)
        let width = featureNames.count
        var x = [Float]()
        x.reserveCapacity(n * width)
        var y = [Float]()
        y.reserveCapacity(n)
        var row = [Float](repeating: 0, count: width)
        func recorded(_ value: Double, _ column: Int, _ lower: Double, _ upper: Double) -> Float {
            let scale = pow(10.0, Double(decimals[column]))
            return Float((min(max(value, lower), upper) * scale).rounded() / scale)
        }
        for _ in 0..<n {
            let age = Double(recorded(site.ageMean + site.ageSD * rng.nextGaussian(), 0, 18, 100))
            let male = rng.nextBernoulli(site.maleFraction) ? 1.0 : 0.0
            let smoker = rng.nextBernoulli(site.smokerRate) ? 1.0 : 0.0
            let bmi = Double(recorded(site.bmiMean + site.bmiSD * rng.nextGaussian(), 3, 16, 60))
            let systolic = 112 + 0.45 * (age - 40) + 0.6 * (bmi - 27) + site.systolicShift + 14 * rng.nextGaussian()
            let heartRate = 76 + 4 * smoker + 11 * rng.nextGaussian()
            let diabetesLogit = -2.4 + 0.035 * (age - 55) + 0.12 * (bmi - 28)
            let diabetic = rng.nextBernoulli(1 / (1 + exp(-diabetesLogit))) ? 1.0 : 0.0
            let hba1c = diabetic == 1 ? 7.6 + 1.2 * rng.nextGaussian() : 5.4 + 0.35 * rng.nextGaussian()
            let creatinineCentre = 0.8 + 0.006 * (age - 40) + 0.15 * male + 0.2 * diabetic
            let creatinine = creatinineCentre * exp(0.25 * rng.nextGaussian()) * site.creatinineCalibration
            let admissionRate =
                0.35 * site.careIntensity * exp(0.02 * (age - 60) + 0.4 * diabetic + (creatinine > 1.5 ? 0.3 : 0))
            let priorAdmissions = Double(min(15, rng.nextPoisson(admissionRate)))
            let stay = 1 + Double(rng.nextPoisson(3.2 * site.careIntensity * exp(0.012 * (age - 60))))
            let medications = Double(
                min(30, rng.nextPoisson(max(0.5, 3 + 0.06 * (age - 40) + 2 * diabetic + 0.8 * priorAdmissions))))

            row[0] = Float(age)
            row[1] = Float(male)
            row[2] = Float(smoker)
            row[3] = Float(bmi)
            row[4] = recorded(systolic, 4, 80, 220)
            row[5] = recorded(heartRate, 5, 40, 150)
            row[6] = recorded(hba1c, 6, 4, 14)
            row[7] = recorded(creatinine, 7, 0.3, 8)
            row[8] = Float(priorAdmissions)
            row[9] = Float(min(stay, 60))
            row[10] = Float(medications)
            x.append(contentsOf: row)
            y.append(rng.nextBernoulli(risk(row, site: site)) ? 1 : 0)
        }
        return Dataset(
            unchecked: Tensor(shape: [n, width], scalars: x), labels: Tensor(y), featureNames: featureNames,
            classCount: 2, classNames: nil)
    }

    /// Generates every site, each from its own stream derived from `seed` and its position,
    /// so adding a site does not change the others.
    public static func generateSites(_ sites: [SiteProfile] = quickstartSites, seed: UInt64) -> [Dataset] {
        let root = TesseraRandom(seed: seed)
        return sites.enumerated().map { index, site in
            var stream = root.derived(UInt64(index + 1))
            return generate(site: site, seed: stream.next())
        }
    }
}
