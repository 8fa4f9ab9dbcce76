import Foundation
import Testing

@testable import TesseraData
@testable import TesseraTensor

/// Files written by numpy 2.4 itself (`numpy.lib.format.write_array`), as known answers: they
/// pin the loader to the real writer's layout (including its 128-byte padded headers), not to
/// our reading of the format description.
enum NumpyWritten {
    /// `np.array([[1.5, -2, 0.25], [3, 4.25, -0.5]], dtype='<f4')`, format 1.0.
    static let float32Matrix = hex(
        "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000c03f000000c00000803e0000404000008840000000bf"
    )
    /// `np.array([0, 2], dtype='<i8')`, format 2.0.
    static let int64Labels = hex(
        "934e554d50590200740000007b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a00000000000000000200000000000000"
    )
    /// `np.array([0.1, -7.0], dtype='<f8')`, format 3.0.
    static let float64Vector = hex(
        "934e554d50590300740000007b276465736372273a20273c6638272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a9a9999999999b93f0000000000001cc0"
    )
    /// `np.asfortranarray([[1, 2], [3, 4]], dtype='<f4')`, format 1.0.
    static let fortranMatrix = hex(
        "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a20547275652c20277368617065273a2028322c2032292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000803f000040400000004000008040"
    )

    static func hex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }
}

@Suite struct NPYLoaderReading {
    @Test func readsNumpyWrittenFilesOfEveryVersion() throws {
        try withTemporaryDirectory { dir in
            let matrix = try NPYLoader.loadTensor(writeFile(NumpyWritten.float32Matrix, named: "x.npy", in: dir))
            #expect(matrix.shape == [2, 3])
            #expect(matrix.scalars == [1.5, -2, 0.25, 3, 4.25, -0.5])

            let labelsURL = try writeFile(NumpyWritten.int64Labels, named: "y.npy", in: dir)
            #expect(try NPYLoader.header(of: labelsURL).majorVersion == 2)
            #expect(try NPYLoader.loadTensor(labelsURL).scalars == [0, 2])

            let doublesURL = try writeFile(NumpyWritten.float64Vector, named: "d.npy", in: dir)
            let header = try NPYLoader.header(of: doublesURL)
            #expect(header.majorVersion == 3)
            #expect(header.descr == "<f8")
            #expect(header.dataOffset == 128)
            // f8 → f4 rounds to the nearest float.
            #expect(try NPYLoader.loadTensor(doublesURL).scalars == [Float(0.1), -7])
        }
    }

    @Test func featuresAndLabelsFilesMakeADataset() throws {
        try withTemporaryDirectory { dir in
            let x = try writeFile(NumpyWritten.float32Matrix, named: "x.npy", in: dir)
            let y = try writeFile(NumpyWritten.int64Labels, named: "y.npy", in: dir)
            let data = try NPYLoader.loadDataset(features: x, labels: y)
            #expect(data.features.shape == [2, 3])
            #expect(data.labels.scalars == [0, 2])
            #expect(data.classCount == 3)
            #expect(try NPYLoader.loadDataset(features: x, labels: y, classCount: 10).classCount == 10)
            let regression = try NPYLoader.loadDataset(features: x, labels: y, task: .regression)
            #expect(regression.classCount == nil)
        }
    }

    @Test func integerDTypesForLabels() throws {
        try withTemporaryDirectory { dir in
            let cases: [(String, [UInt8])] = [
                ("<i4", littleEndianBytes([Int32(3), 0, 1])),
                ("|u1", [3, 0, 1]),
                ("<u1", [3, 0, 1]),
                ("|i1", [3, 0, 1]),
                ("<i2", littleEndianBytes([Int16(3), 0, 1])),
                ("<u8", littleEndianBytes([UInt64(3), 0, 1])),
            ]
            for (descr, payload) in cases {
                let url = try writeFile(npyBytes(descr: descr, shape: [3], payload: payload), named: "l.npy", in: dir)
                #expect(try NPYLoader.loadTensor(url).scalars == [3, 0, 1], "\(descr)")
            }
            // Negative values survive signed conversion.
            let signed = try writeFile(
                npyBytes(descr: "<i8", shape: [2], payload: littleEndianBytes([Int64(-5), 7])), named: "s.npy",
                in: dir)
            #expect(try NPYLoader.loadTensor(signed).scalars == [-5, 7])
        }
    }

    @Test func labelsShapedAsAColumnAndHigherRankFeatures() throws {
        try withTemporaryDirectory { dir in
            let images = (0..<8).map { Float($0) }
            let x = try writeFile(
                npyBytes(descr: "<f4", shape: [2, 1, 2, 2], major: 2, payload: float32Bytes(images)), named: "x.npy",
                in: dir)
            let y = try writeFile(
                npyBytes(descr: "<i8", shape: [2, 1], payload: littleEndianBytes([Int64(1), 0])), named: "y.npy",
                in: dir)
            let data = try NPYLoader.loadDataset(features: x, labels: y)
            #expect(data.sampleShape == [1, 2, 2])
            #expect(data.labels.shape == [2])
        }
    }

    @Test func zeroDimensionalAndEmptyArrays() throws {
        try withTemporaryDirectory { dir in
            let scalar = try writeFile(
                npyBytes(descr: "<f8", shape: [], payload: float64Bytes([2.5])), named: "s.npy",
                in: dir)
            // The header says `shape: ()`: a 0-d array of one element.
            let tensor = try NPYLoader.loadTensor(scalar)
            #expect(tensor.shape == [])
            #expect(tensor.scalars == [2.5])
            let empty = try writeFile(npyBytes(descr: "<f4", shape: [0, 3], payload: []), named: "e.npy", in: dir)
            #expect(try NPYLoader.loadTensor(empty).shape == [0, 3])
        }
    }
}

@Suite struct NPYLoaderErrors {
    @Test func fortranOrderIsRejectedWithAFix() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile(NumpyWritten.fortranMatrix, named: "f.npy", in: dir)
            expectDataError(.unsupportedLayout, file: url, mentioning: ["Fortran", "ascontiguousarray"]) {
                _ = try NPYLoader.loadTensor(url)
            }
        }
    }

    @Test func unsupportedDTypesNameTheTypeAndTheAlternatives() throws {
        try withTemporaryDirectory { dir in
            for descr in [">f4", "<c8", "<f2", "|b1", "<U5", "|f4"] {
                let url = try writeFile(
                    npyBytes(descr: descr, shape: [1], payload: [0, 0, 0, 0]), named: "t.npy", in: dir)
                expectDataError(.unsupportedDType, file: url, mentioning: ["'\(descr)'", "<f4"]) {
                    _ = try NPYLoader.loadTensor(url)
                }
            }
            let structured = try writeFile(
                npyBytes(
                    descr: "", shape: [1], payload: [0, 0, 0, 0],
                    headerOverride: "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"),
                named: "rec.npy", in: dir)
            expectDataError(.unsupportedDType, file: structured, mentioning: ["structured"]) {
                _ = try NPYLoader.loadTensor(structured)
            }
        }
    }

    @Test func malformedHeaders() throws {
        try withTemporaryDirectory { dir in
            let cases: [(String, [UInt8], String)] = [
                ("magic", Array("NOT AN NPY FILE AT ALL".utf8), "magic"),
                ("cut", [0x93] + Array("NUMPY".utf8), "magic"),
                (
                    "version", [0x93] + Array("NUMPY".utf8) + [4, 0, 0, 0],
                    "version 4.0 is not supported"
                ),
                (
                    "no-shape",
                    npyBytes(
                        descr: "<f4", shape: [1], payload: [0, 0, 0, 0],
                        headerOverride: "{'descr': '<f4', 'fortran_order': False, }"), "'shape'"
                ),
                (
                    "no-dict",
                    npyBytes(descr: "<f4", shape: [1], payload: [0, 0, 0, 0], headerOverride: "descr = <f4"),
                    "cannot be parsed"
                ),
                (
                    "bad-order",
                    npyBytes(
                        descr: "<f4", shape: [1], payload: [0, 0, 0, 0],
                        headerOverride: "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }"),
                    "cannot be parsed"
                ),
                (
                    "negative",
                    npyBytes(
                        descr: "<f4", shape: [1], payload: [],
                        headerOverride: "{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 2), }"),
                    "negative or too large"
                ),
                ("header-too-long", [0x93] + Array("NUMPY".utf8) + [1, 0, 0xFF, 0x7F] + Array("{}".utf8), "declares"),
            ]
            for (name, bytes, fragment) in cases {
                let url = try writeFile(bytes, named: "\(name).npy", in: dir)
                expectDataError(.malformedHeader, file: url, mentioning: [fragment]) {
                    _ = try NPYLoader.loadTensor(url)
                }
            }
        }
    }

    @Test func truncatedAndTrailingData() throws {
        try withTemporaryDirectory { dir in
            let short = try writeFile(
                npyBytes(descr: "<f4", shape: [2, 2], payload: float32Bytes([1, 2, 3])), named: "short.npy", in: dir)
            expectDataError(.truncatedData, file: short, mentioning: ["16 bytes", "only 12"]) {
                _ = try NPYLoader.loadTensor(short)
            }
            let shortDoubles = try writeFile(
                npyBytes(descr: "<f8", shape: [3], payload: float64Bytes([1, 2])), named: "short8.npy", in: dir)
            expectDataError(.truncatedData, file: shortDoubles, mentioning: ["24 bytes", "only 16"]) {
                _ = try NPYLoader.loadTensor(shortDoubles)
            }
            let long = try writeFile(
                npyBytes(descr: "<f4", shape: [1], payload: float32Bytes([1, 2])), named: "long.npy", in: dir)
            expectDataError(.trailingData, file: long, mentioning: ["4 bytes"]) {
                _ = try NPYLoader.loadTensor(long)
            }
        }
    }

    @Test func datasetMismatchesNameBothFiles() throws {
        try withTemporaryDirectory { dir in
            let x = try writeFile(NumpyWritten.float32Matrix, named: "x.npy", in: dir)
            let y3 = try writeFile(
                npyBytes(descr: "<i8", shape: [3], payload: littleEndianBytes([Int64(0), 1, 2])), named: "y3.npy",
                in: dir)
            expectDataError(.shapeMismatch, file: y3, mentioning: [x.path, "2 samples", "3 labels"]) {
                _ = try NPYLoader.loadDataset(features: x, labels: y3)
            }
            let fractional = try writeFile(
                npyBytes(descr: "<f4", shape: [2], payload: float32Bytes([0, 1.5])), named: "frac.npy", in: dir)
            expectDataError(.invalidLabel, file: fractional, mentioning: ["1.5"]) {
                _ = try NPYLoader.loadDataset(features: x, labels: fractional)
            }
            let negative = try writeFile(
                npyBytes(descr: "<i4", shape: [2], payload: littleEndianBytes([Int32(0), -1])), named: "neg.npy",
                in: dir)
            expectDataError(.invalidLabel, file: negative) {
                _ = try NPYLoader.loadDataset(features: x, labels: negative)
            }
            let y = try writeFile(NumpyWritten.int64Labels, named: "y.npy", in: dir)
            expectDataError(.invalidLabel, file: y, mentioning: ["2 classes"]) {
                _ = try NPYLoader.loadDataset(features: x, labels: y, classCount: 2)
            }
        }
    }
}
