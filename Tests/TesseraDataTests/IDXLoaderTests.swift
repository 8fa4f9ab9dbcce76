import Foundation
import Testing

@testable import TesseraData
@testable import TesseraTensor

@Suite struct IDXLoaderTests {
    /// Two 2×3 "images" and their labels, as MNIST lays them out.
    private func writeTinyMNIST(in dir: URL) throws -> (images: URL, labels: URL) {
        let pixels: [UInt8] = [0, 51, 102, 153, 204, 255, 255, 0, 0, 0, 0, 17]
        let images = try writeFile(idxBytes(type: 0x08, shape: [2, 2, 3], payload: pixels), named: "img", in: dir)
        let labels = try writeFile(idxBytes(type: 0x08, shape: [2], payload: [7, 2]), named: "lbl", in: dir)
        return (images, labels)
    }

    @Test func readsImagesScaledToUnitAndLabels() throws {
        try withTemporaryDirectory { dir in
            let files = try writeTinyMNIST(in: dir)
            let data = try IDXLoader.loadDataset(images: files.images, labels: files.labels)
            #expect(data.features.shape == [2, 2, 3])
            #expect(data.features.scalars[0...5] == [0, 0.2, 0.4, 0.6, 0.8, 1])
            #expect(data.features[1, 1, 2] == Float(17) / 255)
            #expect(data.labels.scalars == [7, 2])
            #expect(data.classCount == 8)
            #expect(
                try IDXLoader.loadDataset(images: files.images, labels: files.labels, classCount: 10).classCount == 10)
            // Unscaled reading keeps the raw bytes.
            #expect(try IDXLoader.loadTensor(files.images).scalars.last == 17)
            // A convolution sees [batch, 1, rows, cols].
            var batches = try data.batches(size: 2, sampleShape: [1, 2, 3])
            let loaded = batches.next()
            #expect(loaded)
            #expect(batches.features.shape == [2, 1, 2, 3])
        }
    }

    @Test func readsBigEndianWideTypes() throws {
        try withTemporaryDirectory { dir in
            let floats: [Float] = [1.5, -2]
            let floatPayload = floats.flatMap { withUnsafeBytes(of: $0.bitPattern.bigEndian) { Array($0) } }
            let f = try writeFile(idxBytes(type: 0x0D, shape: [2], payload: floatPayload), named: "f", in: dir)
            #expect(try IDXLoader.loadTensor(f, scaleBytesToUnit: true).scalars == [1.5, -2])
            let ints: [Int32] = [-3, 70000]
            let intPayload = ints.flatMap { withUnsafeBytes(of: $0.bigEndian) { Array($0) } }
            let i = try writeFile(idxBytes(type: 0x0C, shape: [1, 2], payload: intPayload), named: "i", in: dir)
            #expect(try IDXLoader.loadTensor(i).scalars == [-3, 70000])
            let shorts: [Int16] = [-2, 300]
            let shortPayload = shorts.flatMap { withUnsafeBytes(of: $0.bigEndian) { Array($0) } }
            let s = try writeFile(idxBytes(type: 0x0B, shape: [2], payload: shortPayload), named: "s", in: dir)
            #expect(try IDXLoader.loadTensor(s).scalars == [-2, 300])
            let doubles: [Double] = [0.25]
            let doublePayload = doubles.flatMap { withUnsafeBytes(of: $0.bitPattern.bigEndian) { Array($0) } }
            let d = try writeFile(idxBytes(type: 0x0E, shape: [1], payload: doublePayload), named: "d", in: dir)
            #expect(try IDXLoader.loadTensor(d).scalars == [0.25])
            let signed = try writeFile(idxBytes(type: 0x09, shape: [2], payload: [0xFF, 5]), named: "b", in: dir)
            #expect(try IDXLoader.loadTensor(signed, scaleBytesToUnit: true).scalars == [-1, 5])
        }
    }

    @Test func gzipAndBadMagicAreExplained() throws {
        try withTemporaryDirectory { dir in
            let gz = try writeFile([0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0], named: "train.gz", in: dir)
            expectDataError(.malformedHeader, file: gz, mentioning: ["gzip", "gunzip"]) {
                _ = try IDXLoader.loadTensor(gz)
            }
            let magic = try writeFile([0x01, 0x00, 0x08, 0x01, 0, 0, 0, 1, 9], named: "m", in: dir)
            expectDataError(.malformedHeader, file: magic, mentioning: ["not an IDX file"]) {
                _ = try IDXLoader.loadTensor(magic)
            }
            let type = try writeFile([0, 0, 0x0A, 1, 0, 0, 0, 1, 9], named: "t", in: dir)
            expectDataError(.unsupportedDType, file: type, mentioning: ["0xa"]) {
                _ = try IDXLoader.loadTensor(type)
            }
            let rank0 = try writeFile([0, 0, 0x08, 0], named: "r", in: dir)
            expectDataError(.malformedHeader, file: rank0, mentioning: ["zero dimensions"]) {
                _ = try IDXLoader.loadTensor(rank0)
            }
            let cutHeader = try writeFile([0, 0, 0x08, 3, 0, 0, 0, 2], named: "h", in: dir)
            expectDataError(.truncatedData, file: cutHeader) {
                _ = try IDXLoader.loadTensor(cutHeader)
            }
        }
    }

    @Test func sizeMustMatchTheDimensions() throws {
        try withTemporaryDirectory { dir in
            let short = try writeFile(
                idxBytes(type: 0x08, shape: [2, 28, 28], payload: [UInt8](repeating: 1, count: 1000)), named: "short",
                in: dir)
            expectDataError(.truncatedData, file: short, mentioning: ["1568 bytes", "only 1000"]) {
                _ = try IDXLoader.loadTensor(short)
            }
            let long = try writeFile(idxBytes(type: 0x08, shape: [3], payload: [1, 2, 3, 4]), named: "long", in: dir)
            expectDataError(.trailingData, file: long, mentioning: ["1 extra"]) {
                _ = try IDXLoader.loadTensor(long)
            }
        }
    }

    @Test func imageAndLabelCountsMustAgree() throws {
        try withTemporaryDirectory { dir in
            let files = try writeTinyMNIST(in: dir)
            let threeLabels = try writeFile(idxBytes(type: 0x08, shape: [3], payload: [1, 2, 3]), named: "l3", in: dir)
            expectDataError(.shapeMismatch, file: threeLabels, mentioning: [files.images.path, "2 images", "3 labels"])
            {
                _ = try IDXLoader.loadDataset(images: files.images, labels: threeLabels)
            }
            expectDataError(.invalidLabel, file: files.labels, mentioning: ["5 classes"]) {
                _ = try IDXLoader.loadDataset(images: files.images, labels: files.labels, classCount: 5)
            }
        }
    }
}
