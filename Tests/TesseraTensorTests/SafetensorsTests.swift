import Foundation
import PropertyBased
import TesseraSupport
import Testing

@testable import TesseraTensor

// MARK: - Helpers

/// A fixture written by the reference `safetensors` library (Scripts/make-safetensors-fixture.py).
private func fixtureURL(_ name: String) throws -> URL {
    let directory = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
    return directory.appending(path: name)
}

private func fixtureBytes(_ name: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: fixtureURL(name)))
}

/// A safetensors file around `header`: the 8-byte little-endian length, the header, `data`.
private func file(_ header: String, data: [UInt8] = []) -> [UInt8] {
    file(headerBytes: Array(header.utf8), data: data)
}

private func file(headerBytes: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    var bytes: [UInt8] = []
    withUnsafeBytes(of: (declaredLength ?? UInt64(headerBytes.count)).littleEndian) { bytes.append(contentsOf: $0) }
    return bytes + headerBytes + data
}

/// Float32 values as the fixture script computes them: Python doubles rounded by NumPy.
private func float32(_ values: [Double]) -> [UInt32] {
    values.map { Float($0).bitPattern }
}

private func bits(_ tensor: Tensor?) -> [UInt32]? {
    tensor?.scalars.map(\.bitPattern)
}

private func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appending(path: "tessera-safetensors-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// The tensors of `reference.safetensors`, in a different order from the file's.
private let referenceTensors: [(name: String, tensor: Tensor)] = [
    ("scale", Tensor(shape: [1], scalars: [-9])),
    (
        "0.weight",
        Tensor(
            shape: [3, 4],
            scalars: [0.5, -1.25, 2, -0.0, 3.140625, -2.71875, 1e-3, -1e3, 1e-40, -7.5, 0.1, 42].map {
                Float($0 as Double)
            })
    ),
    ("2.bias", Tensor(shape: [2], scalars: [-0.75, 0.3].map { Float($0 as Double) })),
    ("0.bias", Tensor(shape: [3], scalars: [0.25, -0.5, 1.5])),
    ("2.weight", Tensor(shape: [2, 3], scalars: [-3, 0.125, 6.5, 1e20, -1e-20, 0.2].map { Float($0 as Double) })),
]
private let referenceMetadata = ["format": "pt", "tessera": "fixture"]

// MARK: - Reference fixtures

/// Everything about the safetensors format; run with `swift test --filter SafetensorsTests`.
@Suite enum SafetensorsTests {}

extension SafetensorsTests {
    @Suite struct ReferenceFixtures {
        @Test func readsTheReferenceFixtureExactly() throws {
            let file = try Safetensors.read(from: fixtureURL("reference.safetensors"))
            // The reference orders tensors by name bytes (all F32), and "file order" is that order.
            #expect(file.names == ["0.bias", "0.weight", "2.bias", "2.weight", "scale"])
            #expect(file.metadata == referenceMetadata)
            #expect(file.dtypes.values.allSatisfy { $0 == .f32 })
            #expect(file["0.weight"]?.shape == [3, 4])
            #expect(
                bits(file["0.weight"])
                    == float32([0.5, -1.25, 2, -0.0, 3.140625, -2.71875, 1e-3, -1e3, 1e-40, -7.5, 0.1, 42]))
            #expect(file["0.bias"]?.shape == [3])
            #expect(bits(file["0.bias"]) == float32([0.25, -0.5, 1.5]))
            #expect(file["2.weight"]?.shape == [2, 3])
            #expect(bits(file["2.weight"]) == float32([-3, 0.125, 6.5, 1e20, -1e-20, 0.2]))
            #expect(file["2.bias"]?.shape == [2])
            #expect(bits(file["2.bias"]) == float32([-0.75, 0.3]))
            #expect(file["scale"]?.shape == [1])
            #expect(bits(file["scale"]) == float32([-9]))
        }

        @Test func encodesTheReferenceFixtureByteForByte() throws {
            let expected = try fixtureBytes("reference.safetensors")
            let encoded = try Safetensors.encode(referenceTensors, metadata: referenceMetadata)
            #expect(encoded == expected)
        }

        @Test func encodesEmptyAndScalarShapesLikeTheReference() throws {
            let expected = try fixtureBytes("edge-shapes.safetensors")
            let decoded = try Safetensors.decode(expected)
            #expect(decoded.names == ["empty", "matrix.empty", "scalar", "vector"])
            #expect(decoded["empty"] == Tensor(shape: [0], scalars: []))
            #expect(decoded["matrix.empty"] == Tensor(shape: [2, 0], scalars: []))
            #expect(decoded["scalar"] == Tensor(shape: [], scalars: [3.25]))
            #expect(decoded["vector"] == Tensor([1, -2, 3]))
            #expect(decoded.metadata.isEmpty)
            let encoded = try Safetensors.encode([
                ("vector", Tensor([1, -2, 3])),
                ("scalar", Tensor(shape: [], scalars: [3.25])),
                ("matrix.empty", Tensor(shape: [2, 0], scalars: [])),
                ("empty", Tensor(shape: [0], scalars: [])),
            ])
            #expect(encoded == expected)
        }

        /// Escaping (quote, backslash, control characters, DEL, `/`, non-ASCII) and the byte-wise
        /// name order ("" < "Z" < "a" < … < "é" < "😀") as the reference writes them.
        @Test func escapesAndOrdersNamesLikeTheReference() throws {
            let expected = try fixtureBytes("escapes.safetensors")
            let names = [
                "q\"uote", "back\\slash", "nl\nx", "ctl\u{01}\u{1F}", "del\u{7F}", "\u{E9}", "\u{1F600}",
                "sl/ash", "tab\t\u{08}\u{0C}\r", "Z", "a", "",
            ]
            let tensors = names.enumerated().map { ($0.element, Tensor([Float($0.offset + 1)])) }
            let metadata = ["k\"\n\u{02}": "v\\/\u{E9}"]
            #expect(try Safetensors.encode(tensors, metadata: metadata) == expected)
            let decoded = try Safetensors.decode(expected)
            #expect(
                decoded.names.map { Array($0.utf8) }
                    == names.map { Array($0.utf8) }.sorted { $0.lexicographicallyPrecedes($1) })
            #expect(decoded.metadata == metadata)
            for (index, name) in names.enumerated() {
                #expect(decoded[name] == Tensor([Float(index + 1)]), "tensor \(name.debugDescription)")
            }
        }

        @Test func convertsF64F16AndBF16ToFloat32() throws {
            let file = try Safetensors.read(from: fixtureURL("mixed-dtypes.safetensors"))
            // The reference orders by descending dtype alignment: F64, F32, BF16, F16.
            #expect(file.names == ["double", "single", "brain", "half"])
            #expect(file.dtypes == ["double": .f64, "single": .f32, "brain": .bf16, "half": .f16])
            #expect(file.metadata == ["format": "np"])
            // F64 rounds to the nearest Float; beyond Float's range it becomes an infinity.
            #expect(bits(file["double"]) == [Float(0.1 as Double), -Float.infinity, 2.5].map(\.bitPattern))
            #expect(bits(file["single"]) == [7, -8].map { Float($0).bitPattern })
            #expect(file["brain"]?.shape == [2, 2])
            #expect(bits(file["brain"]) == float32([1, -3.5, 0.15625, 3.3895313892515355e38]))
            // F16: max, smallest normal, smallest subnormal, infinity and -0 all exact.
            #expect(
                bits(file["half"])
                    == [0.5, -2, 65504, 0x1p-14, 0x1p-24, .infinity, -0.0, 0.333251953125].map {
                        ($0 as Float).bitPattern
                    })
        }

        @Test func refusesIntegerTensorsWrittenByTheReference() throws {
            let error = try #require(throws: TensorError.self) {
                try Safetensors.read(from: fixtureURL("int64.safetensors"))
            }
            #expect(error.code == .unsupportedDType)
            #expect(error.message.contains("'bn.num_batches_tracked'"))
            #expect(error.message.contains("I64"))
            #expect(error.message.contains("int64.safetensors"))
        }

        /// Vectors from the reference implementation's own unit tests (`tensor.rs`:
        /// `test_empty` and `test_serialization`).
        @Test func matchesTheReferenceUnitTestVectors() throws {
            #expect(try Safetensors.encode([]) == [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
            #expect(
                try Safetensors.encode([], metadata: ["framework": "pt"])
                    == [40, 0, 0, 0, 0, 0, 0, 0] + Array(#"{"__metadata__":{"framework":"pt"}}     "#.utf8))
            let attention = Tensor(shape: [1, 2, 3], scalars: [0, 1, 2, 3, 4, 5])
            let expected: [UInt8] =
                [64, 0, 0, 0, 0, 0, 0, 0]
                + Array(#"{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}"#.utf8)
                + [0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64]
            #expect(try Safetensors.encode([("attn.0", attention)]) == expected)
            #expect(try Safetensors.decode(expected)["attn.0"] == attention)
        }
    }
}

// MARK: - Round trips

extension SafetensorsTests {
    @Suite struct RoundTrips {
        /// Random shapes (rank 0 to 3, extents 0 to 4, so empty tensors and scalars appear),
        /// random bit patterns (NaN payloads, infinities, subnormals, -0), Latin-1 names with
        /// control characters and quotes, and random metadata all survive encode → decode bit for
        /// bit; and re-encoding what was decoded gives the same bytes.
        @Test func encodeDecodeRoundTripsRandomTensors() async {
            await propertyCheck(
                count: 200,
                input: Gen.int(in: 0...4).array(of: 0...3).array(of: 0...6),
                Gen.latin1.string(of: 0...6).array(of: 6),
                Gen.latin1.string(of: 0...8).array(of: 0...6),
                Gen<UInt64>.value(in: 0...UInt64.max)
            ) { shapes, nameStems, metadataStrings, seed in
                var rng = TesseraRandom(seed: seed)
                let tensors: [(name: String, tensor: Tensor)] = shapes.enumerated().map { index, shape in
                    let count = shape.reduce(1, *)
                    let scalars = (0..<count).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
                    return ("\(nameStems[index])#\(index)", Tensor(shape: shape, scalars: scalars))
                }
                var metadata: [String: String] = [:]
                for pair in stride(from: 0, to: metadataStrings.count - 1, by: 2) {
                    metadata[metadataStrings[pair]] = metadataStrings[pair + 1]
                }
                do {
                    let bytes = try Safetensors.encode(tensors, metadata: metadata)
                    let headerLength = bytes.prefix(8).enumerated().reduce(0) {
                        $0 | Int($1.element) << (8 * $1.offset)
                    }
                    #expect(headerLength % 8 == 0, "the data section must start 8-byte aligned")
                    let decoded = try Safetensors.decode(bytes)
                    #expect(decoded.metadata == metadata)
                    #expect(
                        decoded.names.map { Array($0.utf8) }
                            == tensors.map { Array($0.name.utf8) }.sorted { $0.lexicographicallyPrecedes($1) })
                    for (name, tensor) in tensors {
                        #expect(decoded[name]?.shape == tensor.shape)
                        #expect(bits(decoded[name]) == bits(tensor))
                    }
                    #expect(try Safetensors.encode(decoded.namedTensors, metadata: decoded.metadata) == bytes)
                } catch {
                    Issue.record("round trip threw \(error)")
                }
            }
        }

        /// Every binary16 value converts exactly (NaNs stay NaNs with their sign).
        @Test func halfConversionIsExactForAllValues() throws {
            #if !(os(macOS) && arch(x86_64))
            for raw in 0...UInt16.max {
                let expected = Float(Float16(bitPattern: raw))
                let actual = Safetensors.floatFromHalf(raw)
                if expected.isNaN {
                    #expect(actual.isNaN && actual.sign == expected.sign, "half 0x\(String(raw, radix: 16))")
                } else {
                    #expect(actual.bitPattern == expected.bitPattern, "half 0x\(String(raw, radix: 16))")
                }
            }
            #endif
            // Spot checks that hold on every platform.
            #expect(Safetensors.floatFromHalf(0x3C00) == 1)
            #expect(Safetensors.floatFromHalf(0x0001) == 0x1p-24)
            #expect(Safetensors.floatFromHalf(0xFC00) == -.infinity)
        }

        /// What other writers produce and the reference accepts: an unpadded header (so the data is
        /// misaligned), entries not in offset order, whitespace, escapes, an unknown field and
        /// `"__metadata__": null`.
        @Test func acceptsEverythingTheReferenceAccepts() throws {
            let header = """
                 {"b" : {"dtype":"F32","shape":[2],"data_offsets":[4,12], "extra": {"nested": [1, 2.5, true, null]}},
                "__metadata__": null,
                "\\u00e9\\ud83d\\ude00": {"data_offsets":[0,4],"shape":[],"dtype":"F32"}}\t\r\n
                """
            #expect(header.utf8.count % 8 != 0)
            var data: [UInt8] = []
            for value: Float in [-1.5, 2.25, -3.125] {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) }
            }
            let decoded = try Safetensors.decode(file(header, data: data))
            #expect(decoded.names == ["\u{E9}\u{1F600}", "b"])
            #expect(decoded["\u{E9}\u{1F600}"] == Tensor(shape: [], scalars: [-1.5]))
            #expect(decoded["b"] == Tensor([2.25, -3.125]))
            #expect(decoded.metadata.isEmpty)
        }

        @Test func rejectsNamesTheFormatCannotHold() {
            let duplicate = #expect(throws: TensorError.self) {
                try Safetensors.encode([("w", Tensor([1])), ("w", Tensor([2]))])
            }
            #expect(duplicate?.code == .invalidArgument)
            #expect(duplicate?.message.contains("'w' appears more than once") == true)
            let reserved = #expect(throws: TensorError.self) {
                try Safetensors.encode([("__metadata__", Tensor([1]))])
            }
            #expect(reserved?.code == .invalidArgument)
            #expect(reserved?.message.contains("__metadata__") == true)
        }
    }
}

// MARK: - Files and models

extension SafetensorsTests {
    @Suite struct FilesAndModels {
        @Test func writeIsAtomicAndReadable() throws {
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let url = directory.appending(path: "model.safetensors")

            try Safetensors.write(referenceTensors, metadata: referenceMetadata, to: url)
            #expect([UInt8](try Data(contentsOf: url)) == (try fixtureBytes("reference.safetensors")))
            let first = try Safetensors.read(from: url)
            #expect(first.metadata == referenceMetadata)
            #expect(Set(first.names) == Set(referenceTensors.map(\.name)))

            // Replacing the file leaves only the new version and no temporary files.
            try Safetensors.write([("only", Tensor([4, 5]))], to: url)
            #expect(try Safetensors.read(from: url).namedTensors.map(\.name) == ["only"])
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: directory.path(percentEncoded: false)) == [
                    "model.safetensors"
                ])

            // A write that fails (here, while encoding) leaves the previous version intact.
            #expect(throws: TensorError.self) {
                try Safetensors.write([("x", Tensor([1])), ("x", Tensor([2]))], to: url)
            }
            #expect(try Safetensors.read(from: url)["only"] == Tensor([4, 5]))
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: directory.path(percentEncoded: false)) == [
                    "model.safetensors"
                ])
        }

        @Test func writeIntoAMissingDirectoryNamesThePath() throws {
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let url = directory.appending(path: "missing/model.safetensors")
            let error = try #require(throws: TensorError.self) { try Safetensors.write([("a", Tensor([1]))], to: url) }
            #expect(error.code == .ioFailure)
            #expect(error.message.contains(directory.appending(path: "missing").path(percentEncoded: false)))
        }

        @Test func readErrorsNameTheFile() throws {
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let missing = directory.appending(path: "absent.safetensors")
            let notFound = try #require(throws: TensorError.self) { try Safetensors.read(from: missing) }
            #expect(notFound.code == .ioFailure)
            #expect(notFound.message.contains("absent.safetensors"))

            let truncated = directory.appending(path: "truncated.safetensors")
            try Data(try fixtureBytes("reference.safetensors").dropLast(3)).write(to: truncated)
            let malformed = try #require(throws: TensorError.self) { try Safetensors.read(from: truncated) }
            #expect(malformed.code == .malformedFile)
            #expect(malformed.message.contains("truncated.safetensors"))
            #expect(malformed.message.contains("'scale'"))
        }

        @Test func sequentialSaveLoadRestoresIdenticalParameters() throws {
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let url = directory.appending(path: "mlp.safetensors")

            let trained = try ModelPreset.mlp(inputs: 4, hidden: [5], classes: 3, seed: 1)
            try trained.saveSafetensors(to: url, metadata: ["round": "7"])
            let file = try Safetensors.read(from: url)
            #expect(file.names == ["0.bias", "0.weight", "2.bias", "2.weight"])
            #expect(file["0.weight"]?.shape == [5, 4])

            let fresh = try ModelPreset.mlp(inputs: 4, hidden: [5], classes: 3, seed: 2)
            #expect(fresh.parameters != trained.parameters)
            let metadata = try fresh.loadSafetensors(from: url)
            #expect(metadata == ["round": "7"])
            #expect(fresh.parameters.map(\.bitPattern) == trained.parameters.map(\.bitPattern))
        }

        /// The state stores a model from its flat vector in pieces; the pieces must make the
        /// very bytes the tensors make, or a version's digest would depend on the path taken.
        @Test func aFlatVectorEncodesToTheBytesOfItsTensors() throws {
            let model = try ModelPreset.mlp(inputs: 4, hidden: [5], classes: 3, seed: 1)
            let metadata = ["version": "1.0.3", "experiment": "x"]
            let tensors = try Safetensors.encode(model.namedParameters(), metadata: metadata)
            let contents = try Safetensors.contents(model.parameters, layout: model.parameterLayout, metadata: metadata)
            #expect(contents.count == tensors.count)
            #expect(contents.joined == tensors)
            #expect(
                try Safetensors.encode(model.parameters, layout: model.parameterLayout, metadata: metadata) == tensors)
            var outside = model.parameterLayout
            outside[0].offset = model.parameters.count
            #expect(throws: TensorError.self) {
                _ = try Safetensors.contents(model.parameters, layout: outside)
            }
        }

        @Test func loadingAnotherArchitectureChangesNothingAndNamesTheFile() throws {
            let directory = try temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: directory) }
            let url = directory.appending(path: "wide.safetensors")
            try ModelPreset.mlp(inputs: 4, hidden: [6], classes: 3, seed: 1).saveSafetensors(to: url)

            let model = try ModelPreset.mlp(inputs: 4, hidden: [5], classes: 3, seed: 2)
            let before = model.parameters
            let error = try #require(throws: TensorError.self) { try model.loadSafetensors(from: url) }
            #expect(error.code == .shapeMismatch)
            #expect(error.message.contains("wide.safetensors"))
            #expect(error.message.contains("'0."))
            #expect(model.parameters == before)
        }
    }
}

// MARK: - Hostile input

/// One hostile file, the error it must produce, and the words the message must contain.
struct MalformedSafetensorsCase: CustomTestStringConvertible, Sendable {
    let label: String
    let bytes: [UInt8]
    let code: TensorError.Code
    let fragments: [String]
    var testDescription: String { label }

    init(_ label: String, _ bytes: [UInt8], _ code: TensorError.Code, _ fragments: [String]) {
        self.label = label
        self.bytes = bytes
        self.code = code
        self.fragments = fragments
    }

    /// A `malformedFile` case.
    init(_ label: String, _ bytes: [UInt8], _ fragments: [String]) {
        self.init(label, bytes, .malformedFile, fragments)
    }

    private static let four: [UInt8] = [0, 0, 128, 63]
    private static func one(_ entry: String, data: [UInt8] = four) -> [UInt8] {
        file(#"{"a":{"# + entry + "}}", data: data)
    }

    static let all: [MalformedSafetensorsCase] = [
        .init("file shorter than 8 bytes", [16, 0, 0], ["3 bytes", "too short"]),
        .init("empty file", [], ["0 bytes", "too short"]),
        .init(
            "header length beyond the file", file(headerBytes: Array("{}".utf8), declaredLength: 64),
            ["64 bytes", "only 2 bytes", "truncated"]),
        .init(
            "header length over the 100 MB limit",
            file(headerBytes: Array("{}".utf8), declaredLength: 100_000_001), ["100000001", "100000000-byte limit"]),
        .init(
            "header length of 2^64-1", file(headerBytes: Array("{}".utf8), declaredLength: .max),
            ["18446744073709551615", "limit"]),
        .init(
            "header length at the limit but past the file",
            file(headerBytes: Array("{}".utf8), declaredLength: 100_000_000), ["100000000 bytes", "only 2 bytes"]),
        .init(
            "header not UTF-8", file(headerBytes: Array(#"{"a"#.utf8) + [0xFF] + Array(#"":{}}"#.utf8)),
            ["not valid UTF-8", "0xff", "header byte 3"]),
        .init("header not JSON", file(#"{"a":{"dtype":"F32""#), ["not valid JSON", "the end of the header"]),
        .init("header JSON with trailing text", file("{} x"), ["not valid JSON", "after the header's JSON object"]),
        .init("header an array", file("[]"), ["must be a JSON object", "an array"]),
        .init("header empty", file(""), ["must be a JSON object", "the end of the header"]),
        .init("entry not an object", file(#"{"a":[0,4]}"#), ["tensor 'a' must be an object", "an array"]),
        .init("entry missing dtype", one(#""shape":[1],"data_offsets":[0,4]"#), ["tensor 'a' has no 'dtype' field"]),
        .init("entry missing shape", one(#""dtype":"F32","data_offsets":[0,4]"#), ["tensor 'a' has no 'shape' field"]),
        .init(
            "entry missing data_offsets", one(#""dtype":"F32","shape":[1]"#), ["tensor 'a' has no 'data_offsets' field"]
        ),
        .init(
            "dtype not a string", one(#""dtype":4,"shape":[1],"data_offsets":[0,4]"#),
            ["tensor 'a'", "'dtype' must be a string", "a number"]),
        .init(
            "shape not an array", one(#""dtype":"F32","shape":"1","data_offsets":[0,4]"#),
            ["tensor 'a'", "'shape' must be", "a string"]),
        .init(
            "shape entry negative", one(#""dtype":"F32","shape":[-1],"data_offsets":[0,4]"#),
            ["tensor 'a'", "non-negative integers", "-1"]),
        .init(
            "shape entry fractional", one(#""dtype":"F32","shape":[1.5],"data_offsets":[0,4]"#),
            ["tensor 'a'", "found 1.5"]),
        .init(
            "shape entry with exponent", one(#""dtype":"F32","shape":[1e0],"data_offsets":[0,4]"#),
            ["tensor 'a'", "found 1e0"]),
        .init(
            "shape entry not a number", one(#""dtype":"F32","shape":[true],"data_offsets":[0,4]"#),
            ["tensor 'a'", "a boolean"]),
        .init(
            "shape entry beyond 64 bits", one(#""dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]"#),
            ["tensor 'a'", "too large"]),
        .init(
            "shape product overflows",
            one(#""dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]"#, data: []),
            ["tensor 'a'", "overflows"]),
        .init(
            "shape claims a terabyte", one(#""dtype":"F32","shape":[250000000000],"data_offsets":[0,4]"#),
            ["tensor 'a'", "needs 1000000000000 bytes", "span 4"]),
        .init(
            "data_offsets too short", one(#""dtype":"F32","shape":[1],"data_offsets":[0]"#),
            ["tensor 'a'", "exactly 2", "found 1"]),
        .init(
            "data_offsets too long", one(#""dtype":"F32","shape":[1],"data_offsets":[0,4,4]"#),
            ["tensor 'a'", "exactly 2", "found more"]),
        .init("data_offsets negative", one(#""dtype":"F32","shape":[1],"data_offsets":[-4,0]"#), ["tensor 'a'", "-4"]),
        .init(
            "data_offsets beyond the data", one(#""dtype":"F32","shape":[100],"data_offsets":[0,400]"#),
            ["tensor 'a'", "[0, 400]", "beyond the data section", "4 bytes"]),
        .init(
            "data_offsets reversed", one(#""dtype":"F32","shape":[1],"data_offsets":[4,0]"#),
            ["tensor 'a'", "reversed", "[4, 0]"]),
        .init(
            "tensors overlap",
            file(
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
                data: four + four), ["tensor 'b'", "overlaps tensor 'a'", "byte 8"]),
        .init(
            "gap between tensors",
            file(
                #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#,
                data: four + four + four), ["gap", "tensor 'a' ends at byte 4", "tensor 'b' starts at byte 8", "4..<8"]),
        .init(
            "gap before the first tensor", one(#""dtype":"F32","shape":[1],"data_offsets":[4,8]"#, data: four + four),
            ["gap", "tensor 'a' starts at byte 4"]),
        .init(
            "data not fully covered", one(#""dtype":"F32","shape":[1],"data_offsets":[0,4]"#, data: four + four),
            ["cover 4 bytes", "8 bytes after the header", "belong to no tensor"]),
        .init(
            "byte count differs from shape", one(#""dtype":"F32","shape":[2],"data_offsets":[0,4]"#),
            ["tensor 'a'", "F32", "[2]", "needs 8 bytes", "span 4"]),
        .init(
            "byte count differs for a refused dtype", one(#""dtype":"I64","shape":[1],"data_offsets":[0,4]"#),
            ["tensor 'a'", "I64", "needs 8 bytes"]),
        .init(
            "unknown dtype", one(#""dtype":"F17","shape":[1],"data_offsets":[0,4]"#), .unsupportedDType,
            ["tensor 'a'", "unknown dtype 'F17'"]),
        .init(
            "integer dtype", one(#""dtype":"I8","shape":[4],"data_offsets":[0,4]"#), .unsupportedDType,
            ["tensor 'a'", "dtype I8"]),
        .init(
            "sub-byte dtype", one(#""dtype":"F4","shape":[8],"data_offsets":[0,4]"#), .unsupportedDType,
            ["tensor 'a'", "F4"]),
        .init(
            "duplicate tensor names",
            file(
                #"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
                data: four), ["tensor 'a' appears more than once"]),
        .init(
            "duplicate field", one(#""dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]"#),
            ["tensor 'a' has field 'dtype' twice"]),
        .init(
            "metadata value not a string",
            file(#"{"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: four),
            ["metadata value for key 'k' must be a string", "a number"]),
        .init(
            "metadata not an object", file(#"{"__metadata__":["k"]}"#),
            ["'__metadata__' must be an object of strings", "an array"]),
        .init(
            "metadata key twice", file(#"{"__metadata__":{"k":"1","k":"2"}}"#),
            ["metadata key 'k' appears more than once"]),
        .init(
            "metadata twice", file(#"{"__metadata__":{},"__metadata__":{}}"#), ["'__metadata__' appears more than once"]
        ),
        .init(
            "nesting deeper than 128 levels",
            one(
                #""dtype":"F32","shape":[1],"data_offsets":[0,4],"x":"# + String(repeating: "[", count: 200)
                    + String(repeating: "]", count: 200)),
            ["nests deeper than 128 levels"]),
        .init("unpaired surrogate in a name", file(#"{"\ud800":{}}"#), ["not valid JSON", "unpaired surrogate"]),
        .init(
            "raw control character in a name", file("{\"a\u{01}\":{}}"), ["not valid JSON", "control character 0x01"]),
        .init(
            "leading zero in a number", one(#""dtype":"F32","shape":[01],"data_offsets":[0,4]"#),
            ["not valid JSON", "leading zeros"]),
    ]
}

extension SafetensorsTests {
    @Suite struct HostileInput {
        @Test(arguments: MalformedSafetensorsCase.all)
        func hostileFileIsRejectedWithAClearError(_ hostile: MalformedSafetensorsCase) throws {
            let error = try #require(throws: TensorError.self) { try Safetensors.decode(hostile.bytes) }
            #expect(error.code == hostile.code, "\(error)")
            for fragment in hostile.fragments {
                #expect(
                    error.message.contains(fragment),
                    "message \(error.message.debugDescription) lacks \(fragment.debugDescription)")
            }
        }

        /// A hostile name does not flood the error message.
        @Test func longNamesAreShortenedInMessages() throws {
            let name = String(repeating: "n", count: 100_000)
            let error = try #require(throws: TensorError.self) {
                try Safetensors.decode(
                    file(#"{""# + name + #"":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]))
            }
            #expect(error.message.contains("(100000 bytes)"))
            #expect(error.message.utf8.count < 400)
        }
    }
}
