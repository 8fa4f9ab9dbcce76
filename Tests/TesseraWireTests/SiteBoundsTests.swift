import Foundation
import TesseraFederation
import TesseraWire
import Testing

/// Counts and text from a site are bounded where they enter: a count no sum can overflow, a
/// Hello that fits one log line, a failure reason of a few kilobytes.
@Suite struct SiteBoundsTests {
    @Test func sampleCountsAboveTheBoundAreRefused() throws {
        var report = Tessera_V1_TrainingReport()
        report.sampleCount = UInt64(Int.max)
        report.steps = 1
        expectWireError(.valueOutOfRange, field: "tessera.v1.TrainingReport.sample_count") {
            _ = try TrainingReport(report)
        }
        report.sampleCount = UInt64(WireProtocol.maximumSampleCount)
        #expect(try TrainingReport(report).sampleCount == WireProtocol.maximumSampleCount)

        var result = Tessera_V1_EvaluationResult()
        result.sampleCount = UInt64(WireProtocol.maximumSampleCount) + 1
        expectWireError(.valueOutOfRange, field: "tessera.v1.EvaluationResult.sample_count") {
            _ = try EvaluationMetrics(result)
        }

        var hello = try Tessera_V1_Hello(ParticipantHello(datasets: ["risk": 10]))
        hello.datasets[0].sampleCount = UInt64(Int.max)
        expectWireError(.valueOutOfRange, field: "tessera.v1.DatasetOffer.sample_count") {
            _ = try ParticipantHello(hello)
        }
    }

    @Test func aHelloWithTooManyOffersOrLongNamesIsRefused() throws {
        let many = Dictionary(uniqueKeysWithValues: (0...WireProtocol.maximumDatasetOffers).map { ("d\($0)", 1) })
        let crowded = try Tessera_V1_Hello(ParticipantHello(datasets: many))
        expectWireError(.valueOutOfRange, field: "tessera.v1.Hello.datasets") { _ = try ParticipantHello(crowded) }

        let longName = String(repeating: "n", count: WireProtocol.maximumNameBytes + 1)
        let named = try Tessera_V1_Hello(ParticipantHello(datasets: [longName: 1]))
        expectWireError(.valueOutOfRange, field: "tessera.v1.DatasetOffer.name") { _ = try ParticipantHello(named) }

        let versioned = try Tessera_V1_Hello(ParticipantHello(datasets: ["risk": 1], softwareVersion: longName))
        expectWireError(.valueOutOfRange, field: "tessera.v1.Hello.software_version") {
            _ = try ParticipantHello(versioned)
        }

        let fine = Dictionary(uniqueKeysWithValues: (1...WireProtocol.maximumDatasetOffers).map { ("d\($0)", 1) })
        #expect(try ParticipantHello(Tessera_V1_Hello(ParticipantHello(datasets: fine))).datasets.count == 256)
    }
}

@Suite struct UntrustedTextTests {
    @Test func controlCharactersAreEscapedAndLongTextIsCut() {
        #expect(UntrustedText.loggable("a\nb\r\tc\\d") == "a\\nb\\r\\tc\\\\d")
        #expect(UntrustedText.loggable("bell\u{7}zero\u{0}rtl\u{202E}") == "bell\\u{7}zero\\u{0}rtl\\u{202e}")
        #expect(UntrustedText.loggable("héllo ✓") == "héllo ✓")
        let long = UntrustedText.loggable(String(repeating: "x", count: 1000), limit: 10)
        #expect(long == "xxxxxxxxxx…(990 more characters)")
    }

    @Test func listsAreCutAfterAFewNames() {
        let names = (1...20).map { "set\($0)" }
        #expect(UntrustedText.loggableList(names, count: 3) == "set1, set2, set3 and 17 more")
        #expect(UntrustedText.loggableList(["a\nb"]) == "a\\nb")
    }
}
