import TesseraPrivacy
import TesseraSupport
import Testing

@Suite struct ClippingTests {
    @Test func anUpdateAboveTheNormIsScaledOntoIt() {
        var update: [Float] = [3, 4, 0]
        let before = Clipping.clip(&update, to: 1)
        #expect(before == 5)
        #expect(Clipping.norm(update) <= 1)
        #expect(abs(Clipping.norm(update) - 1) < 1e-6)
        // The direction is kept.
        #expect(abs(Double(update[0]) / Double(update[1]) - 0.75) < 1e-6)
    }

    @Test func anUpdateWithinTheNormIsUntouched() {
        var update: [Float] = [0.3, -0.4]
        let before = Clipping.clip(&update, to: 1)
        #expect(abs(before - 0.5) < 1e-7)
        #expect(update == [0.3, -0.4])
    }

    @Test func aNonFiniteUpdateReportsAnInfiniteNormAndStaysAsItWas() {
        var update: [Float] = [1, .nan]
        let before = Clipping.clip(&update, to: 1)
        #expect(before == .infinity)
        #expect(update[0] == 1)
    }

    @Test func manyRandomUpdatesNeverExceedTheBoundAfterClipping() {
        var generator = Xoshiro256StarStar(seed: 18)
        for _ in 0..<200 {
            var update = (0..<257).map { _ in Float.random(in: -10...10, using: &generator) }
            let bound = Double.random(in: 0.01...5, using: &generator)
            Clipping.clip(&update, to: bound)
            #expect(Clipping.norm(update) <= bound)
        }
    }
}
