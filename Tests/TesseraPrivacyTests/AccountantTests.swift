import Foundation
import TesseraPrivacy
import Testing

/// Relative difference, for comparisons with published and reference values.
func relativeError(_ value: Double, _ reference: Double) -> Double {
    abs(value - reference) / abs(reference)
}

@Suite struct AccountantTests {
    /// TensorFlow Privacy's `dp_accounting` RDP of the Poisson-subsampled Gaussian (issue 18).
    @Test func theSubsampledGaussianMatchesTensorFlowPrivacysVector() {
        let orders = [1.5, 2.5, 5, 50, 100]
        let expected = [6.5007e-4, 1.0854e-3, 2.1808e-3, 2.3846e-2, 1.6742e2]
        var accountant = PrivacyAccountant(orders: orders)
        accountant.compose(.gaussian(noiseMultiplier: 2.5), samplingRate: 0.01, steps: 50)
        #expect(accountant.steps == 50)
        for (value, reference) in zip(accountant.rdp, expected) {
            let error = relativeError(value, reference)
            #expect(error < 1e-4, "RDP \(value), expected \(reference)")
        }
    }

    /// The numpy reference of the benchmark (`Benchmarks/reference/rdp_numpy.py`, the same
    /// formulas vectorised, checked against a term-by-term transcription of Mironov et al. 2019).
    @Test func tenThousandRoundsMatchTheNumpyReference() {
        let accountant = PrivacyAccountant().composing(
            .gaussian(noiseMultiplier: 1.1), samplingRate: 0.01, steps: 10_000)
        let spent = accountant.spent(delta: 1e-5)
        #expect(relativeError(spent.epsilon, 5.631992368569015) < 1e-6)
        #expect(spent.order == 4.7)
    }

    @Test func composingManyStepsAtOnceEqualsComposingThemOneByOne() {
        let mechanism = PrivacyMechanism.gaussian(noiseMultiplier: 0.9)
        var stepwise = PrivacyAccountant()
        for _ in 0..<25 { stepwise.compose(mechanism, samplingRate: 0.05) }
        let atOnce = PrivacyAccountant().composing(mechanism, samplingRate: 0.05, steps: 25)
        #expect(stepwise.steps == 25 && atOnce.steps == 25)
        for (a, b) in zip(stepwise.rdp, atOnce.rdp) { #expect(relativeError(a, b) < 1e-12) }
    }

    @Test func composingLeavesTheOriginalUntouched() {
        let before = PrivacyAccountant().composing(.gaussian(noiseMultiplier: 1), samplingRate: 0.1, steps: 3)
        let after = before.composing(.gaussian(noiseMultiplier: 1), samplingRate: 0.1, steps: 3)
        #expect(before.steps == 3)
        #expect(after.steps == 6)
        #expect(after.epsilon(delta: 1e-5) > before.epsilon(delta: 1e-5))
    }

    @Test func mechanismsOfDifferentKindsComposeIntoOneLedger() {
        let gaussian = PrivacyMechanism.gaussian(noiseMultiplier: 1.2)
        let skellam = PrivacyMechanism.skellam(mu: 500, l1Sensitivity: 60, l2Sensitivity: 20)
        let both = PrivacyAccountant().composing(gaussian, samplingRate: 0.02, steps: 10)
            .composing(skellam, samplingRate: 0.02, steps: 10)
        let gaussianOnly = PrivacyAccountant().composing(gaussian, samplingRate: 0.02, steps: 10)
        let skellamOnly = PrivacyAccountant().composing(skellam, samplingRate: 0.02, steps: 10)
        for index in both.rdp.indices {
            let sum = gaussianOnly.rdp[index] + skellamOnly.rdp[index]
            #expect(relativeError(both.rdp[index], sum) < 1e-12)
        }
    }

    @Test func nothingComposedSpendsNothing() {
        #expect(PrivacyAccountant().epsilon(delta: 1e-5) == 0)
        let unsampled = PrivacyAccountant().composing(.gaussian(noiseMultiplier: 1), samplingRate: 0, steps: 100)
        #expect(unsampled.epsilon(delta: 1e-5) == 0)
    }

    /// ε(α) = rdp − (log δ + log α)/(α − 1) + log((α − 1)/α), worked by hand at δ = 1e-5:
    /// α = 2, rdp 0.5: 0.5 + 11.512925465 − 0.693147181 − 0.693147181 = 10.626631103;
    /// α = 10, rdp 1: 1 + (11.512925465 − 2.302585093)/9 − 0.105360516 = 1.918010636.
    @Test func theConversionMatchesAHandWorkedCase() {
        let result = RDPConversion.epsilon(orders: [2, 10], rdp: [0.5, 1], delta: 1e-5)
        #expect(abs(result.epsilon - 1.918010636) < 1e-8)
        #expect(result.order == 10)
        let lowOrder = RDPConversion.epsilon(orders: [2], rdp: [0.5], delta: 1e-5)
        #expect(abs(lowOrder.epsilon - 10.626631103) < 1e-8)
    }

    @Test func theConversionSkipsOrdersWithoutAFiniteValue() {
        let result = RDPConversion.epsilon(orders: [2, 10, 20], rdp: [.infinity, 1, .nan], delta: 1e-5)
        #expect(result.order == 10)
        let none = RDPConversion.epsilon(orders: [2], rdp: [.infinity], delta: 1e-5)
        #expect(none.epsilon == .infinity)
    }

    @Test func aBadDeltaIsRefusedWithItsValue() {
        for delta in [0, 1, -1e-5, .nan, 2] {
            #expect {
                try RDPConversion.validate(delta: delta)
            } throws: { error in
                let error = error as? PrivacyError
                return error?.code == .invalidParameter && error?.message.contains("delta") == true
            }
        }
        #expect(throws: Never.self) { try RDPConversion.validate(delta: 1e-5) }
    }

    @Test func theLedgerSurvivesAJSONRoundTrip() throws {
        let accountant = PrivacyAccountant().composing(.gaussian(noiseMultiplier: 1.3), samplingRate: 0.03, steps: 17)
            .composing(.skellam(mu: 900, l1Sensitivity: 80, l2Sensitivity: 25), samplingRate: 0.03, steps: 4)
        let data = try JSONEncoder().encode(accountant)
        let decoded = try JSONDecoder().decode(PrivacyAccountant.self, from: data)
        #expect(decoded == accountant)
        #expect(decoded.epsilon(delta: 1e-6) == accountant.epsilon(delta: 1e-6))
    }

    @Test func aDamagedLedgerIsRefused() {
        let damaged = [
            #"{"orders":[2,3],"rdp":[0.1],"steps":1}"#,
            #"{"orders":[2,3],"rdp":[0.1,-0.2],"steps":1}"#,
            #"{"orders":[1,3],"rdp":[0.1,0.2],"steps":1}"#,
            #"{"orders":[],"rdp":[],"steps":0}"#,
            #"{"orders":[2,3],"rdp":[0.1,0.2],"steps":-1}"#,
        ]
        for text in damaged {
            #expect(throws: DecodingError.self, "\(text)") {
                try JSONDecoder().decode(PrivacyAccountant.self, from: Data(text.utf8))
            }
        }
    }

    @Test func theStandardGridIsTheDocumentedOne() {
        let orders = RDPOrders.standard
        #expect(orders.count == 99 + 52 + 2)
        #expect(orders.first == 1.1)
        #expect(orders.contains(2) && orders.contains(10.9) && orders.contains(12) && orders.contains(63))
        #expect(orders.suffix(2) == [128, 256])
        #expect(!orders.contains(11) && !orders.contains(64))
        #expect(zip(orders, orders.dropFirst()).allSatisfy { $0 < $1 })
    }
}
