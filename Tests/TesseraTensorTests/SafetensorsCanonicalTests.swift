import Testing

@testable import TesseraTensor

// MARK: - Canonical bytes

extension SafetensorsTests {
    /// Model versions are content-addressed by the SHA-256 of their file, so the same tensors
    /// and metadata must always give the same bytes, however they were put together.
    @Suite struct CanonicalBytes {
        private static let tensors: [(name: String, tensor: Tensor)] = [
            ("layer.10.weight", Tensor(shape: [2, 2], scalars: [1, -2, 0.5, -0.0])),
            ("layer.2.bias", Tensor(shape: [2], scalars: [3, 4])),
            ("Layer.1", Tensor(shape: [1], scalars: [5])),
            ("layer.2.weight", Tensor(shape: [1, 2], scalars: [6, 7])),
        ]
        private static let metadata: [(String, String)] = [
            ("version", "1.0.20"), ("experiment", "quickstart"), ("config_hash", "ab12"),
            ("architecture", "logistic regression 11 → 2"),
        ]

        /// A dictionary of `pairs` built in their order, with room for `capacity` entries: two
        /// such dictionaries are equal but may iterate in different orders.
        private static func dictionary(_ pairs: [(String, String)], capacity: Int) -> [String: String] {
            var result = [String: String](minimumCapacity: capacity)
            for (key, value) in pairs { result[key] = value }
            return result
        }

        @Test func tensorAndMetadataInsertionOrderDoNotChangeTheBytes() throws {
            let reference = try Safetensors.encode(Self.tensors, metadata: Self.dictionary(Self.metadata, capacity: 4))
            var rng = TesseraRandom(seed: 16)
            for capacity in [4, 9, 40, 300] {
                var tensors = Self.tensors
                var pairs = Self.metadata
                rng.shuffle(&tensors)
                rng.shuffle(&pairs)
                let metadata = Self.dictionary(pairs, capacity: capacity)
                let bytes = try Safetensors.encode(tensors, metadata: metadata)
                #expect(bytes == reference, "tensors \(tensors.map(\.name)), metadata \(Array(metadata.keys))")
            }
        }

        /// The exact header: metadata first with its keys sorted, then the tensors sorted by name
        /// bytes, compact JSON, integers in plain decimal, spaces up to a multiple of 8 bytes.
        @Test func knownAnswerHeader() throws {
            let bytes = try Safetensors.encode(
                Self.tensors + [
                    ("big", Tensor(shape: [1000, 1000], scalars: [Float](repeating: 0, count: 1_000_000)))
                ],
                metadata: Self.dictionary(Self.metadata, capacity: 4))
            let expected =
                #"{"__metadata__":{"architecture":"logistic regression 11 → 2","config_hash":"ab12","#
                + #""experiment":"quickstart","version":"1.0.20"},"#
                + #""Layer.1":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
                + #""big":{"dtype":"F32","shape":[1000,1000],"data_offsets":[4,4000004]},"#
                + #""layer.10.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[4000004,4000020]},"#
                + #""layer.2.bias":{"dtype":"F32","shape":[2],"data_offsets":[4000020,4000028]},"#
                + #""layer.2.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[4000028,4000036]}}"#
            let padding = (8 - expected.utf8.count % 8) % 8
            let length = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            #expect(length == expected.utf8.count + padding)
            let header = String(decoding: bytes[8..<(8 + length)], as: UTF8.self)
            #expect(header == expected + String(repeating: " ", count: padding))
            #expect(bytes.count == 8 + length + 4_000_036)
        }
    }
}
