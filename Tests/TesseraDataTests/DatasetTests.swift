import Foundation
import Testing

@testable import TesseraData
@testable import TesseraTensor

@Suite struct DatasetBasics {
    @Test func initialiserChecksShapesAndClassLabels() throws {
        let x = Tensor(shape: [3, 2], scalars: [1, 2, 3, 4, 5, 6])
        expectDataError(.shapeMismatch, mentioning: ["3 samples", "2"]) {
            _ = try Dataset(features: x, labels: Tensor([0, 1]))
        }
        expectDataError(.invalidLabel, mentioning: ["1.5"]) {
            _ = try Dataset(features: x, labels: Tensor([0, 1.5, 1]), classCount: 2)
        }
        expectDataError(.invalidLabel, mentioning: ["0..<2"]) {
            _ = try Dataset(features: x, labels: Tensor([0, 2, 1]), classCount: 2)
        }
        expectDataError(.shapeMismatch, mentioning: ["feature names"]) {
            _ = try Dataset(features: x, labels: Tensor([0, 1, 1]), featureNames: ["a"])
        }
        // A vector of features is one feature per sample; [N, 1] labels are flattened.
        let column = try Dataset(features: Tensor([1, 2, 3]), labels: Tensor(shape: [3, 1], scalars: [0, 1, 0]))
        #expect(column.features.shape == [3, 1])
        #expect(column.labels.shape == [3])
    }

    @Test func subsetCopiesTheSelectedRowsInOrder() throws {
        let data = try indexedDataset(10)
        let picked = data.subset(indices: [7, 2, 2, 9])
        #expect(picked.features.scalars == [7, 2, 2, 9])
        #expect(picked.labels.scalars == [7, 2, 2, 9])
        #expect(picked.classCount == 10)
    }

    @Test func shuffleIsSeededAndAPermutation() throws {
        let data = try indexedDataset(50)
        let a = data.shuffled(seed: 3)
        #expect(a.features == data.shuffled(seed: 3).features)
        #expect(a.features != data.shuffled(seed: 4).features)
        #expect(a.features.scalars.sorted() == data.features.scalars)
    }

    @Test func splitIsDisjointCoveringAndDeterministic() throws {
        let data = try indexedDataset(101)
        let (train, test) = try data.split(testFraction: 0.2, seed: 11)
        #expect(test.count == 20)
        #expect(train.count == 81)
        let all = (train.features.scalars + test.features.scalars).sorted()
        #expect(all == data.features.scalars)
        let again = try data.split(testFraction: 0.2, seed: 11)
        #expect(again.test.features == test.features)
        #expect(try data.split(testFraction: 0.2, seed: 12).test.features != test.features)
        expectDataError(.invalidArgument) { _ = try data.split(testFraction: 1, seed: 1) }
        // Tiny datasets still give two non-empty sides.
        let two = try indexedDataset(2).split(testFraction: 0.01, seed: 1)
        #expect(two.train.count == 1 && two.test.count == 1)
    }

    @Test func stratifiedSplitKeepsEveryClassOnBothSides() throws {
        // 90 samples of class 0 and 10 of class 1.
        let data = try Dataset(
            features: Tensor(shape: [100, 1], scalars: (0..<100).map(Float.init)),
            labels: Tensor((0..<100).map { $0 < 90 ? 0 : 1 }), classCount: 2)
        let (train, test) = try data.split(testFraction: 0.3, seed: 5, stratified: true)
        #expect(test.classHistogram() == [27, 3])
        #expect(train.classHistogram() == [63, 7])
    }

    @Test func concatenatingBuildsACentralBaseline() throws {
        let a = try indexedDataset(3)
        let b = try indexedDataset(2)
        let both = try Dataset.concatenating([a, b])
        #expect(both.features.scalars == [0, 1, 2, 0, 1])
        let regression = try Dataset(features: Tensor([1]), labels: Tensor([0.5]))
        expectDataError(.shapeMismatch) { _ = try Dataset.concatenating([a, regression]) }
    }
}

@Suite struct StandardizerTests {
    @Test func fittedOnTrainingDataOnly() throws {
        // Training features: column 0 ~ {0, 2, 4, 6} (mean 3), column 1 constant 5.
        let train = try Dataset(
            features: Tensor(shape: [4, 2], scalars: [0, 5, 2, 5, 4, 5, 6, 5]), labels: Tensor([0, 1, 0, 1]),
            classCount: 2)
        // Test features come from a shifted population; their statistics must not leak in.
        let test = try Dataset(
            features: Tensor(shape: [2, 2], scalars: [100, 7, 110, 9]), labels: Tensor([0, 1]), classCount: 2)
        let scaler = try Standardizer.fit(train)
        let trainStd = Float(5).squareRoot()  // population sd of {0, 2, 4, 6}
        #expect(scaler.mean == [3, 5])
        #expect(abs(scaler.standardDeviation[0] - trainStd) < 1e-6)
        #expect(scaler.standardDeviation[1] == 1, "a constant feature gets sd 1")

        let scaledTrain = try scaler.transform(train)
        let column0 = stride(from: 0, to: 8, by: 2).map { scaledTrain.features.scalars[$0] }
        #expect(abs(column0.reduce(0, +)) < 1e-6)
        #expect(abs(column0.map { $0 * $0 }.reduce(0, +) / 4 - 1) < 1e-5)
        #expect(scaledTrain.features.scalars[1] == 0)

        let scaledTest = try scaler.transform(test)
        #expect(abs(scaledTest.features[0, 0] - (100 - 3) / trainStd) < 1e-4)
        #expect(scaledTest.features[1, 1] == 4)
        // Refitting on the test set would centre it; the train-fitted scaler must not.
        #expect(scaledTest.features[0, 0] > 40)
        #expect(try Standardizer.fit(test).mean != scaler.mean)
    }

    @Test func applyMatchesTransformAndWidthIsChecked() throws {
        let train = try Dataset(features: Tensor(shape: [2, 2], scalars: [1, 2, 3, 6]), labels: Tensor([0, 1]))
        let scaler = try Standardizer.fit(train)
        var sample = Tensor([3, 6])
        try scaler.apply(to: &sample)
        #expect(sample.scalars == [1, 1])
        let wide = try Dataset(features: Tensor(shape: [1, 3], scalars: [1, 2, 3]), labels: Tensor([0]))
        expectDataError(.shapeMismatch, mentioning: ["fitted on 2 features"]) { _ = try scaler.transform(wide) }
    }

    @Test func roundTripsThroughJSON() throws {
        let scaler = Standardizer(mean: [1.5, -2], standardDeviation: [0.5, 3])
        let decoded = try JSONDecoder().decode(Standardizer.self, from: JSONEncoder().encode(scaler))
        #expect(decoded == scaler)
    }
}

@Suite struct BatchIteratorTests {
    @Test func everySampleOncePerEpochAndEpochsDiffer() throws {
        let data = try indexedDataset(103)
        var batches = try data.batches(size: 10, shuffleSeed: 42)
        #expect(batches.batchesPerEpoch == 11)
        var orders: [[Float]] = []
        for _ in 0..<3 {
            var seen: [Float] = []
            var sizes: [Int] = []
            while batches.next() {
                // Features and labels of a row stay together.
                #expect(batches.features.scalars.map { Float(Int($0) % 10) } == batches.labels.scalars)
                seen += batches.features.scalars
                sizes.append(batches.features.shape[0])
            }
            #expect(seen.sorted() == data.features.scalars, "every sample exactly once")
            #expect(sizes == [Int](repeating: 10, count: 10) + [3])
            orders.append(seen)
        }
        #expect(orders[0] != orders[1] && orders[1] != orders[2], "each epoch reshuffles")
        // The same seed gives the same epochs.
        var again = try data.batches(size: 10, shuffleSeed: 42)
        var first: [Float] = []
        while again.next() { first += again.features.scalars }
        #expect(first == orders[0])
    }

    @Test func withoutASeedBatchesFollowDatasetOrderAndDropLastSkipsTheShortBatch() throws {
        let data = try indexedDataset(7)
        var seen: [[Float]] = []
        try data.forEachBatch(size: 3, dropLast: true) { features, _ in seen.append(features.scalars) }
        #expect(seen == [[0, 1, 2], [3, 4, 5]])
    }

    @Test func buffersAreReusedAcrossBatchesAndEpochs() throws {
        let data = try indexedDataset(100)
        var batches = try data.batches(size: 16, shuffleSeed: 1)
        var featureAddresses = Set<UnsafePointer<Float>?>()
        var labelAddresses = Set<UnsafePointer<Float>?>()
        var batchCount = 0
        for _ in 0..<3 {
            while batches.next() {
                featureAddresses.insert(batches.features.withUnsafeBufferPointer { $0.baseAddress })
                labelAddresses.insert(batches.labels.withUnsafeBufferPointer { $0.baseAddress })
                batchCount += 1
            }
        }
        #expect(batchCount == 21)
        // One allocation each, kept through the short last batch (4 samples) and the next epoch.
        #expect(featureAddresses.count == 1)
        #expect(labelAddresses.count == 1)
    }

    @Test func reshapesSamplesForConvolutions() throws {
        let data = try Dataset(
            features: Tensor(shape: [3, 4], scalars: (0..<12).map(Float.init)), labels: Tensor([0, 1, 0]),
            classCount: 2)
        var batches = try data.batches(size: 2, sampleShape: [1, 2, 2])
        var shapes: [[Int]] = []
        while batches.next() { shapes.append(batches.features.shape) }
        #expect(shapes == [[2, 1, 2, 2], [1, 1, 2, 2]])
        expectDataError(.shapeMismatch, mentioning: ["[1, 3, 3]"]) {
            _ = try data.batches(size: 2, sampleShape: [1, 3, 3])
        }
        expectDataError(.invalidArgument) { _ = try data.batches(size: 0) }
    }
}
