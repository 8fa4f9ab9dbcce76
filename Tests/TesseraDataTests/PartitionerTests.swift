import Foundation
import Testing

@testable import TesseraData
@testable import TesseraTensor

@Suite struct PartitionerTests {
    static let schemes: [PartitionScheme] = [
        .iid, .dirichlet(alpha: 0.5), .shards(perClient: 2), .powerLaw(exponent: 1.2),
    ]

    /// Every index exactly once, in ascending lists, and a summary that agrees.
    private func expectValid(
        _ partition: Partition, n: Int, clients: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(partition.clientIndices.count == clients, sourceLocation: sourceLocation)
        let all = partition.clientIndices.flatMap { $0 }
        #expect(all.count == n, "sizes sum to N", sourceLocation: sourceLocation)
        #expect(all.sorted() == Array(0..<n), "disjoint and covering", sourceLocation: sourceLocation)
        #expect(partition.clientIndices.allSatisfy { $0 == $0.sorted() }, sourceLocation: sourceLocation)
        #expect(partition.summary.sizes == partition.clientIndices.map(\.count), sourceLocation: sourceLocation)
        #expect(partition.summary.total == n, sourceLocation: sourceLocation)
    }

    @Test(arguments: schemes)
    func everySchemeCoversTheDataOnceAndIsDeterministic(scheme: PartitionScheme) throws {
        let data = try indexedDataset(1000)
        let partition = try Partitioner.partition(data, clients: 20, scheme: scheme, seed: 9)
        expectValid(partition, n: 1000, clients: 20)
        #expect(partition.summary.sizes.allSatisfy { $0 >= 1 })
        let again = try Partitioner.partition(data, clients: 20, scheme: scheme, seed: 9)
        #expect(again.clientIndices == partition.clientIndices)
        let other = try Partitioner.partition(data, clients: 20, scheme: scheme, seed: 10)
        #expect(other.clientIndices != partition.clientIndices)
        // Materialised client datasets carry the right rows.
        let clients = partition.datasets(from: data)
        #expect(clients[3].features.scalars == partition.clientIndices[3].map(Float.init))
    }

    @Test func iidSizesDifferByAtMostOneAndLabelsMatchTheGlobalMix() throws {
        let data = try indexedDataset(10003)
        let partition = try Partitioner.iid(data, clients: 10, seed: 1)
        #expect(Set(partition.summary.sizes) == [1000, 1001])
        #expect(partition.summary.meanLabelDistanceFromGlobal < 0.08)
        #expect(partition.summary.sizeGini < 0.01)
    }

    @Test func smallDirichletAlphaIsSkewedAndLargeAlphaIsNearUniform() throws {
        let data = try indexedDataset(5000)
        let skewed = try Partitioner.dirichlet(data, clients: 20, alpha: 0.1, seed: 3).summary
        let uniform = try Partitioner.dirichlet(data, clients: 20, alpha: 100, seed: 3).summary
        // α = 0.1: each client is dominated by a few classes.
        #expect(skewed.meanNormalizedLabelEntropy < 0.5, "\(skewed)")
        #expect(skewed.meanLabelDistanceFromGlobal > 0.5, "\(skewed)")
        // α = 100: every client is close to the global (uniform) label distribution.
        #expect(uniform.meanNormalizedLabelEntropy > 0.97, "\(uniform)")
        #expect(uniform.meanLabelDistanceFromGlobal < 0.1, "\(uniform)")
        #expect(uniform.labelsPerClient.allSatisfy { $0 == 10 })
    }

    @Test func dirichletGuaranteesTheMinimumEvenForTinyAlpha() throws {
        // α = 0.01 over 40 clients leaves many empty after every draw; the repair step fills them.
        let data = try indexedDataset(400)
        let partition = try Partitioner.dirichlet(data, clients: 40, alpha: 0.01, minimumPerClient: 3, seed: 8)
        expectValid(partition, n: 400, clients: 40)
        #expect(partition.summary.sizes.allSatisfy { $0 >= 3 }, "\(partition.summary.sizes)")
        expectDataError(.invalidArgument, mentioning: ["400 samples", "at least 20"]) {
            _ = try Partitioner.dirichlet(data, clients: 40, alpha: 1, minimumPerClient: 20, seed: 1)
        }
    }

    @Test(arguments: [1, 2, 3])
    func shardsGiveAtMostKLabelsPerClient(k: Int) throws {
        // Unequal classes: shard boundaries would straddle classes in a sorted cut.
        let n = 997
        let data = try Dataset(
            features: Tensor(shape: [n, 1], scalars: (0..<n).map(Float.init)),
            labels: Tensor((0..<n).map { Float(($0 * $0) % 10) }), classCount: 10)
        let partition = try Partitioner.shards(data, clients: 25, perClient: k, seed: 4)
        expectValid(partition, n: n, clients: 25)
        #expect(partition.summary.labelsPerClient.allSatisfy { $0 >= 1 && $0 <= k }, "\(partition.summary)")
        let sizes = partition.summary.sizes
        #expect(sizes.max()! - sizes.min()! <= max(8, 2 * n / (25 * k)), "shards are near-equal: \(sizes)")
    }

    @Test func shardsNeedEnoughShardsForTheClasses() throws {
        let data = try indexedDataset(100)
        expectDataError(.invalidArgument, mentioning: ["4 shards", "10 classes"]) {
            _ = try Partitioner.shards(data, clients: 4, perClient: 1, seed: 1)
        }
    }

    @Test func powerLawSizesAreSkewedAndExponentZeroIsEqual() throws {
        let data = try indexedDataset(3000)
        let skewed = try Partitioner.powerLaw(data, clients: 30, exponent: 1.5, minimumPerClient: 5, seed: 2).summary
        #expect(skewed.sizeGini > 0.5, "\(skewed.sizes)")
        #expect(skewed.sizes.max()! > 10 * skewed.sizes.sorted()[15], "\(skewed.sizes)")
        #expect(skewed.sizes.min()! >= 5)
        // Labels stay IID within the big clients.
        let largest = skewed.sizes.firstIndex(of: skewed.sizes.max()!)!
        #expect(skewed.labelsPerClient[largest] == 10)
        let flat = try Partitioner.powerLaw(data, clients: 30, exponent: 0, seed: 2).summary
        #expect(Set(flat.sizes) == [100])
    }

    @Test func labelSchemesNeedClassLabels() throws {
        let regression = try Dataset(
            features: Tensor((0..<50).map(Float.init)), labels: Tensor([Float](repeating: 0.5, count: 50)))
        expectDataError(.invalidArgument, mentioning: ["classification"]) {
            _ = try Partitioner.dirichlet(regression, clients: 5, alpha: 1, seed: 1)
        }
        let iid = try Partitioner.iid(regression, clients: 5, seed: 1)
        expectValid(iid, n: 50, clients: 5)
        #expect(iid.summary.labelHistograms.allSatisfy { $0.isEmpty })
        expectDataError(.invalidArgument) { _ = try Partitioner.iid(regression, clients: 51, seed: 1) }
    }

    @Test func summaryPrintsOneRowPerClientWithHistograms() throws {
        let data = try indexedDataset(60, classes: 3)
        let summary = try Partitioner.shards(data, clients: 3, perClient: 1, seed: 1).summary
        let lines = summary.description.split(separator: "\n")
        #expect(lines[0] == "partition shards(perClient: 1): 3 clients, 60 samples")
        #expect(lines[1].contains("client") && lines[1].contains("labels |"))
        #expect(lines.count == 3 + 3 + 2)
        // Each shard holds one whole class of 20 here.
        for line in lines[3...5] { #expect(line.contains(" 20 ") && line.hasSuffix(" 0") || line.hasSuffix(" 20")) }
        #expect(lines.last!.contains("Gini"))
    }
}
