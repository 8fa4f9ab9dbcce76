import TesseraFederation
import TesseraPrivacy
import Testing

@testable import TesseraWire

/// The privacy parameters of a training task: they round-trip, and every number is checked for
/// its domain before a site builds anything from it.
@Suite struct PrivacyWireTests {
    static func distributed() throws -> RoundPrivacy {
        let parameters = try DistributedSkellam.calibrate(
            dimension: 50, clipNorm: 1.5, noiseMultiplier: 1.1, minimumSurvivors: 4, maximumCohort: 8, bitNoise: 2)
        return RoundPrivacy(
            mode: .distributed, clipNorm: 1.5, noiseMultiplier: 1.1, delta: 1e-5, samplingRate: 0.25,
            reportsWithinClip: true, distributed: parameters, rotationSeed: 0xDEAD_BEEF)
    }

    static let central = RoundPrivacy(mode: .central, clipNorm: 0.7, noiseMultiplier: 2, delta: 1e-6, samplingRate: 1)

    @Test func aPrivateTaskRoundTrips() throws {
        for privacy in [Self.central, try Self.distributed()] {
            var instruction = Fixtures.train()
            instruction.privacy = privacy
            var encoder = CoordinatorEnvelopeEncoder()
            var decoder = try Fixtures.welcomedDecoder(&encoder)
            let envelope = try encoder.encode(
                .train(instruction), experimentID: Fixtures.experiment, currentStage: .selection)
            guard case .train(let spec) = try decoder.decode(try Fixtures.overTheWire(envelope)) else {
                Issue.record("not a task")
                return
            }
            #expect(spec.privacy == privacy)
            #expect(try spec.instruction(parameters: instruction.parameters).privacy == privacy)
        }
    }

    @Test func outOfRangeNumbersAreRefusedAtTheirField() throws {
        let good = try Tessera_V1_RoundPrivacy(try Self.distributed())
        var wire = good
        wire.mode = .unspecified
        expectWireError(.unknownEnumValue, field: "tessera.v1.RoundPrivacy.mode") { _ = try RoundPrivacy(wire) }
        for value in [0, -1, Double.nan, Double.infinity] {
            wire = good
            wire.clipNorm = value
            expectWireError(.valueOutOfRange, field: "tessera.v1.RoundPrivacy.clip_norm") { _ = try RoundPrivacy(wire) }
            wire = good
            wire.noiseMultiplier = value
            expectWireError(.valueOutOfRange, field: "tessera.v1.RoundPrivacy.noise_multiplier") {
                _ = try RoundPrivacy(wire)
            }
            wire = good
            wire.distributed.perSiteMu = value
            expectWireError(.valueOutOfRange, field: "tessera.v1.DistributedSkellam.per_site_mu") {
                _ = try RoundPrivacy(wire)
            }
        }
        wire = good
        wire.delta = 1
        expectWireError(.valueOutOfRange, field: "tessera.v1.RoundPrivacy.delta") { _ = try RoundPrivacy(wire) }
        wire = good
        wire.samplingRate = 1.5
        expectWireError(.valueOutOfRange, field: "tessera.v1.RoundPrivacy.sampling_rate") { _ = try RoundPrivacy(wire) }
        wire = good
        wire.distributed.dimension = 1 << 40
        expectWireError(.valueOutOfRange, field: "tessera.v1.DistributedSkellam.dimension") {
            _ = try RoundPrivacy(wire)
        }
        wire = good
        wire.distributed.ringBits = 64
        expectWireError(.valueOutOfRange, field: "tessera.v1.DistributedSkellam.ring_bits") {
            _ = try RoundPrivacy(wire)
        }
        wire = good
        wire.distributed.bitScale = 3
        expectWireError(.valueOutOfRange, field: "tessera.v1.DistributedSkellam.bit_scale") {
            _ = try RoundPrivacy(wire)
        }
        wire = good
        wire.distributed.maximumCohort = 2
        expectWireError(.valueOutOfRange, field: "tessera.v1.DistributedSkellam.maximum_cohort") {
            _ = try RoundPrivacy(wire)
        }
        // Each number in range, together inconsistent: a bound below the scaled clip norm.
        wire = good
        wire.distributed.squaredNormBound = 1
        expectWireError(.valueOutOfRange, field: "tessera.v1.RoundPrivacy.distributed") { _ = try RoundPrivacy(wire) }
    }
}
