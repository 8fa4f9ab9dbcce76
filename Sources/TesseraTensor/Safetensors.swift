public import Foundation
public import TesseraSupport

/// Reads and writes Hugging Face's safetensors format, the file format Tessera uses for model
/// versions so that a model trained here loads into PyTorch (and back) unchanged.
///
/// A file is an 8-byte little-endian `UInt64` header length `N`, then `N` bytes of UTF-8 JSON,
/// then the raw little-endian tensor data. The JSON object maps each tensor name to
/// `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets relative to the start of the
/// data section), plus an optional `"__metadata__"` object of string values.
///
/// ## Writing: the reference library's exact bytes
/// The writer reproduces what the reference implementation (the Rust core behind the
/// `safetensors` Python package) writes, byte for byte, so a Tessera model and the same model
/// saved from Python hash identically:
/// - tensors are ordered by descending dtype alignment, then by name compared as UTF-8 bytes;
///   Tessera only writes `F32`, so the order is by name bytes (`"0.bias"` before
///   `"0.weight"`, `"Z"` before `"a"`, ASCII before `"é"`);
/// - each tensor's data follows the previous one with no gap, in that order;
/// - the JSON is compact (no spaces), with `"__metadata__"` first when there is metadata,
///   then the tensors, each as `{"dtype":…,"shape":[…],"data_offsets":[begin,end]}`;
/// - strings are escaped as serde_json does: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`,
///   other control characters as lowercase `\u00XX`, everything else (including `/`, DEL
///   and non-ASCII) as raw UTF-8;
/// - the header is padded with spaces to a multiple of 8 bytes, so the data of every dtype
///   is aligned in a file mapped into memory.
///
/// One thing in the reference is not deterministic: it keeps `__metadata__` in a Rust
/// `HashMap` with a random seed, so with two or more metadata keys it lists them in a
/// different order from run to run. Tessera writes them sorted by UTF-8 bytes, which is one
/// of the orders the reference produces; with zero or one key the output is always
/// identical. Empty metadata is omitted, as the reference does for `metadata=None` (the
/// reference's `metadata={}` writes an empty `"__metadata__":{}` object instead).
///
/// ## Reading: untrusted input
/// Model files arrive from other participants and from the internet, so `decode` trusts no
/// length in them. It checks everything the reference checks, in the same spirit, and says
/// exactly what is wrong (`TensorError.Code.malformedFile`):
/// - the file holds the 8-byte length, the header is at most ``maximumHeaderSize`` bytes
///   (checked before anything is allocated) and lies within the file;
/// - the header is UTF-8 and a single JSON object (nesting at most 128 levels, as
///   serde_json); every tensor entry has a string `dtype`, a `shape` of non-negative
///   integers and `data_offsets` of exactly two non-negative integers; `__metadata__` is an
///   object of strings (or `null`); unknown fields inside a tensor entry are ignored, as the
///   reference ignores them;
/// - sorted by offset, the tensors tile the data section exactly: each starts where the
///   previous one ends, none is reversed, none overlaps another, there is no gap, and the
///   last one ends at the end of the file;
/// - each tensor's byte count equals its element count times its dtype size, computed with
///   overflow checks.
///
/// Tessera is stricter than the reference in two places: a name (or metadata key, or field)
/// that appears twice is an error, where the reference silently keeps the last one; and
/// shape extents and offsets must fit in `Int` (the reference allows up to `UInt64.max`,
/// which no real tensor reaches). Names are Swift strings, so two names that differ only in
/// Unicode normalisation (`"é"` precomposed or as `e` + combining accent) are one name to
/// Tessera and are reported as appearing twice.
///
/// ## Data types
/// A `Tensor` holds `Float` (IEEE binary32), so `F32` is read as is, bit for bit. `F64`,
/// `F16` and `BF16` are converted to `Float32` on reading: `F16` and `BF16` exactly (every
/// value, including subnormals, infinities and signed zeros, is representable), `F64` by
/// rounding to the nearest `Float`, with magnitudes beyond `Float`'s range becoming
/// infinities, as NumPy's `astype(float32)` does. ``SafetensorsFile/dtypes`` records what each
/// tensor was stored as. Every other dtype (`BOOL`, the integer types, the 8-, 6- and 4-bit
/// floats, `C64`) is refused with `TensorError.Code.unsupportedDType`: integer tensors hold
/// counters, indices and quantised codes whose meaning a silent conversion to `Float`
/// would change (and `I64`/`U64` values above 2^24 would lose precision).
public enum Safetensors {
    /// The largest header accepted, in bytes: the reference implementation's limit
    /// (100,000,000), so every file Tessera writes can be read by the reference and
    /// vice versa, and a hostile length cannot make a reader allocate more than this.
    public static let maximumHeaderSize = 100_000_000

    /// The element types Tessera can load, each converted to `Float` (see the type's
    /// documentation for how).
    public enum DType: String, Sendable, Hashable, CaseIterable {
        case f64 = "F64"
        case f32 = "F32"
        case bf16 = "BF16"
        case f16 = "F16"

        /// Bytes per element in the file.
        public var byteCount: Int {
            switch self {
            case .f64: 8
            case .f32: 4
            case .bf16, .f16: 2
            }
        }
    }

    // MARK: Writing

    /// The complete file for `tensors` and `metadata`, identical to what the reference
    /// `safetensors` library writes for the same input (see the type's documentation).
    ///
    /// The order of `tensors` does not matter: the format sorts them. Empty metadata writes no
    /// `__metadata__` entry.
    ///
    /// - Throws: `TensorError.Code.invalidArgument` if a name appears twice, a tensor is named
    ///   `__metadata__`, or the header would exceed ``maximumHeaderSize``.
    public static func encode(
        _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]
    ) throws -> [UInt8] {
        let (head, order) = try head(tensors.map { (name: $0.name, shape: $0.tensor.shape) }, metadata: metadata)
        var file = FileContents(head)
        for index in order {
            file.append(tensors[index].tensor.scalars, 0..<tensors[index].tensor.count)
        }
        return file.joined
    }

    /// The complete file of a model's flat parameter vector, one tensor per entry of `layout`
    /// (a ``Sequential``'s ``Sequential/parameterLayout``): the same bytes as
    /// ``encode(_:metadata:)`` of the tensors those slices make.
    ///
    /// - Throws: what ``encode(_:metadata:)`` throws, and `TensorError.Code.invalidArgument` if
    ///   an entry's slice lies outside `parameters`.
    public static func encode(
        _ parameters: [Float], layout: [ParameterEntry], metadata: [String: String] = [:]
    ) throws -> [UInt8] {
        try contents(parameters, layout: layout, metadata: metadata).joined
    }

    /// The file ``encode(_:layout:metadata:)`` makes, as its header and the slices of
    /// `parameters` that follow it: written or hashed piece by piece, the model's parameters are
    /// never copied into a file buffer first. A model is stored once per published version.
    public static func contents(
        _ parameters: [Float], layout: [ParameterEntry], metadata: [String: String] = [:]
    ) throws -> FileContents {
        for entry in layout where entry.offset < 0 || entry.offset + entry.count > parameters.count {
            throw TensorError(
                .invalidArgument,
                "tensor \(quoted(entry.name)) lies at \(entry.offset)..<\(entry.offset + entry.count), outside the \(parameters.count) parameters"
            )
        }
        let (head, order) = try head(layout.map { (name: $0.name, shape: $0.shape) }, metadata: metadata)
        var file = FileContents(head)
        for index in order {
            file.append(parameters, layout[index].offset..<layout[index].offset + layout[index].count)
        }
        return file
    }

    /// The start of the file of `tensors` (names and shapes): the header's length, then the
    /// header, padded; and the order in which the tensors' data follows it (by name).
    private static func head(
        _ tensors: [(name: String, shape: [Int])], metadata: [String: String]
    ) throws -> (head: [UInt8], order: [Int]) {
        var seen = Set<String>()
        for (name, _) in tensors {
            guard name != metadataKey else {
                throw TensorError(
                    .invalidArgument, "a tensor cannot be named '\(metadataKey)': that key holds the file's metadata")
            }
            guard seen.insert(name).inserted else {
                throw TensorError(.invalidArgument, "tensor name \(quoted(name)) appears more than once")
            }
        }
        let ordered = tensors.indices.sorted {
            tensors[$0].name.utf8.lexicographicallyPrecedes(tensors[$1].name.utf8)
        }

        var header: [UInt8] = [UInt8(ascii: "{")]
        var needsComma = false
        if !metadata.isEmpty {
            appendJSONString(metadataKey, to: &header)
            header.append(contentsOf: #":{"#.utf8)
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (index, key) in keys.enumerated() {
                if index > 0 { header.append(UInt8(ascii: ",")) }
                appendJSONString(key, to: &header)
                header.append(UInt8(ascii: ":"))
                appendJSONString(metadata[key]!, to: &header)
            }
            header.append(UInt8(ascii: "}"))
            needsComma = true
        }
        var offset = 0
        for index in ordered {
            let (name, shape) = tensors[index]
            if needsComma { header.append(UInt8(ascii: ",")) }
            needsComma = true
            let end = offset + shape.reduce(1, *) * DType.f32.byteCount
            appendJSONString(name, to: &header)
            header.append(contentsOf: #":{"dtype":"F32","shape":["#.utf8)
            header.append(contentsOf: shape.map(String.init).joined(separator: ",").utf8)
            header.append(contentsOf: #"],"data_offsets":["#.utf8)
            header.append(contentsOf: "\(offset),\(end)]}".utf8)
            offset = end
        }
        header.append(UInt8(ascii: "}"))
        // Pad with spaces (valid JSON whitespace) so the data section starts 8-byte aligned.
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        guard header.count <= maximumHeaderSize else {
            throw TensorError(
                .invalidArgument,
                "the safetensors header would be \(header.count) bytes, over the \(maximumHeaderSize)-byte limit readers enforce"
            )
        }
        var head: [UInt8] = []
        head.reserveCapacity(8 + header.count)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { head.append(contentsOf: $0) }
        head.append(contentsOf: header)
        return (head, ordered)
    }

    /// Writes `tensors` to `url` so that the file is either absent, the old version, or the
    /// complete new version — never a torn one — even across a crash or power loss.
    ///
    /// A model version is recorded as committed once this returns, so the bytes go through
    /// `TesseraSupport`'s `DurableFile`: a synced temporary file renamed over `url`, then a
    /// synced directory.
    ///
    /// - Throws: what ``encode(_:metadata:)`` throws, or `TensorError.Code.ioFailure` naming
    ///   the path, the failed step and the system error; `url` is then untouched.
    public static func write(
        _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:], to url: URL
    ) throws {
        try write(encoded: encode(tensors, metadata: metadata), to: url)
    }

    /// Writes a complete file's `bytes` to `url` as ``write(_:metadata:to:)`` does.
    static func write(encoded bytes: [UInt8], to url: URL) throws {
        guard url.isFileURL else {
            throw TensorError(.invalidArgument, "cannot write a safetensors file to non-file URL \(url)")
        }
        do {
            try DurableFile.write(bytes, to: url)
        } catch {
            throw TensorError(.ioFailure, error.description)
        }
    }

    // MARK: Reading

    /// Parses and validates a complete safetensors file held in memory.
    ///
    /// - Throws: `TensorError.Code.malformedFile` naming the first problem found, or
    ///   `TensorError.Code.unsupportedDType` naming the tensor and its dtype.
    public static func decode(_ bytes: [UInt8]) throws -> SafetensorsFile {
        try bytes.withUnsafeBytes { try decode(buffer: $0) }
    }

    /// Reads and validates the safetensors file at `url`. Errors name the file.
    ///
    /// - Throws: `TensorError.Code.ioFailure` if the file cannot be read, otherwise what
    ///   ``decode(_:)`` throws, with the path prepended to the message.
    public static func read(from url: URL) throws -> SafetensorsFile {
        let path = url.path(percentEncoded: false)
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw TensorError(.ioFailure, "cannot read safetensors file '\(path)': \(error.localizedDescription)")
        }
        do {
            return try data.withUnsafeBytes { try decode(buffer: $0) }
        } catch let error as TensorError {
            throw TensorError(error.code, "safetensors file '\(path)': \(error.message)")
        }
    }

    static func decode(buffer: UnsafeRawBufferPointer) throws -> SafetensorsFile {
        guard buffer.count >= 8 else {
            throw TensorError(
                .malformedFile,
                "the file is \(buffer.count) bytes, too short for the 8-byte header length that starts every safetensors file"
            )
        }
        let declared = UInt64(littleEndian: buffer.loadUnaligned(as: UInt64.self))
        // Compare as UInt64 first: the declared length may not even fit in an Int.
        guard declared <= UInt64(maximumHeaderSize) else {
            throw TensorError(
                .malformedFile,
                "the header length is \(declared) bytes, over the \(maximumHeaderSize)-byte limit for safetensors headers"
            )
        }
        let headerLength = Int(declared)
        guard headerLength <= buffer.count - 8 else {
            throw TensorError(
                .malformedFile,
                "the header length is \(headerLength) bytes but the file has only \(buffer.count - 8) bytes after the length prefix (truncated file?)"
            )
        }
        let header = UnsafeRawBufferPointer(rebasing: buffer[8..<8 + headerLength])
        if let bad = firstInvalidUTF8Offset(header) {
            throw TensorError(
                .malformedFile,
                "the header is not valid UTF-8 (bad byte 0x\(Hex.encode(header[bad])) at header byte \(bad))")
        }
        var parser = HeaderParser(bytes: header)
        let parsed = try parser.parse()

        let data = UnsafeRawBufferPointer(rebasing: buffer[(8 + headerLength)...])
        let layout = try validatedLayout(parsed.entries, dataSize: data.count)

        var names: [String] = []
        var tensors: [String: Tensor] = [:]
        var dtypes: [String: DType] = [:]
        names.reserveCapacity(layout.count)
        tensors.reserveCapacity(layout.count)
        for entry in layout {
            let bytes = UnsafeRawBufferPointer(rebasing: data[entry.begin..<entry.end])
            let scalars = convertToFloat(bytes, dtype: entry.dtype)
            tensors[entry.name] = try Tensor(validating: entry.shape, scalars: scalars)
            dtypes[entry.name] = entry.dtype
            names.append(entry.name)
        }
        return SafetensorsFile(names: names, tensors: tensors, dtypes: dtypes, metadata: parsed.metadata)
    }

    // MARK: Layout validation

    /// Checks that the tensors tile the data section exactly, as the reference's validation
    /// does, and resolves each dtype. Returns the entries in file (offset) order.
    private static func validatedLayout(_ entries: [HeaderEntry], dataSize: Int) throws -> [LoadableEntry] {
        for entry in entries where entry.end < entry.begin {
            throw TensorError(
                .malformedFile,
                "tensor \(quoted(entry.name)) has reversed data_offsets [\(entry.begin), \(entry.end)]: the end is before the begin"
            )
        }
        // The reference sorts by (begin, end); the sort is stable so zero-byte tensors that
        // share an offset keep their header order.
        let sorted = entries.enumerated().sorted {
            ($0.element.begin, $0.element.end, $0.offset) < ($1.element.begin, $1.element.end, $1.offset)
        }.map(\.element)

        var expected = 0
        var previous: HeaderEntry?
        for entry in sorted {
            guard entry.end <= dataSize else {
                throw TensorError(
                    .malformedFile,
                    "tensor \(quoted(entry.name)) has data_offsets [\(entry.begin), \(entry.end)] beyond the data section, which holds \(dataSize) bytes (truncated file?)"
                )
            }
            if entry.begin > expected {
                let after = previous.map { "tensor \(quoted($0.name)) ends" } ?? "the data section starts"
                throw TensorError(
                    .malformedFile,
                    "gap in the data section: \(after) at byte \(expected) but tensor \(quoted(entry.name)) starts at byte \(entry.begin); bytes \(expected)..<\(entry.begin) belong to no tensor"
                )
            }
            if entry.begin < expected, let previous {
                throw TensorError(
                    .malformedFile,
                    "tensor \(quoted(entry.name)) with data_offsets [\(entry.begin), \(entry.end)] overlaps tensor \(quoted(previous.name)), which ends at byte \(expected)"
                )
            }
            let elementSize = entry.dtype.elementSize
            guard let elements = checkedElementCount(entry.shape),
                case let (byteCount, overflow) = elements.multipliedReportingOverflow(by: elementSize), !overflow
            else {
                throw TensorError(
                    .malformedFile,
                    "tensor \(quoted(entry.name)) has shape \(entry.shape), whose size overflows a 64-bit byte count")
            }
            guard entry.end - entry.begin == byteCount else {
                throw TensorError(
                    .malformedFile,
                    "tensor \(quoted(entry.name)) of dtype \(entry.dtype.name) and shape \(entry.shape) needs \(byteCount) bytes, but its data_offsets [\(entry.begin), \(entry.end)] span \(entry.end - entry.begin)"
                )
            }
            expected = entry.end
            previous = entry
        }
        guard expected == dataSize else {
            throw TensorError(
                .malformedFile,
                "the tensors cover \(expected) bytes of data but the file has \(dataSize) bytes after the header; the last \(dataSize - expected) belong to no tensor"
            )
        }
        // Only once the file is known to be well formed: is every tensor something we load?
        return try sorted.map { entry in
            guard case let .loadable(dtype) = entry.dtype else {
                throw TensorError(
                    .unsupportedDType,
                    "tensor \(quoted(entry.name)) has dtype \(entry.dtype.name); Tessera loads F32 and converts F64, F16 and BF16 to Float32, but refuses other types rather than reinterpret them"
                )
            }
            return LoadableEntry(name: entry.name, dtype: dtype, shape: entry.shape, begin: entry.begin, end: entry.end)
        }
    }

    /// The product of `shape` folded left to right with overflow checks (the reference's
    /// order, so a zero early in the shape keeps later huge extents harmless), or nil.
    /// `Tensor` computes its element count in the same order, so a shape accepted here
    /// cannot trap there.
    private static func checkedElementCount(_ shape: [Int]) -> Int? {
        var product = 1
        for extent in shape {
            let (next, overflow) = product.multipliedReportingOverflow(by: extent)
            if overflow { return nil }
            product = next
        }
        return product
    }

    // MARK: Conversion to Float

    private static func convertToFloat(_ bytes: UnsafeRawBufferPointer, dtype: DType) -> [Float] {
        let count = bytes.count / dtype.byteCount
        return [Float](unsafeUninitializedCapacity: count) { out, initialized in
            switch dtype {
            case .f32:
                #if _endian(little)
                // Byte copy: the data need not be 4-byte aligned (unpadded headers exist).
                UnsafeMutableRawBufferPointer(out).copyMemory(from: bytes)
                #else
                for i in 0..<count {
                    out[i] = Float(
                        bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
                #endif
            case .f64:
                for i in 0..<count {
                    let bits = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                    out[i] = Float(Double(bitPattern: bits))
                }
            case .bf16:
                for i in 0..<count {
                    let bits = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    out[i] = Float(bitPattern: UInt32(bits) << 16)
                }
            case .f16:
                for i in 0..<count {
                    let bits = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                    out[i] = floatFromHalf(bits)
                }
            }
            initialized = count
        }
    }

    /// IEEE binary16 to binary32, exactly. Written out rather than using `Float16` because
    /// `Float16` is unavailable on Intel Macs.
    static func floatFromHalf(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F
        let mantissa = UInt32(bits & 0x3FF)
        switch exponent {
        case 0:
            // Zero or subnormal: mantissa × 2^-24, a normal (or zero) Float.
            return Float(bitPattern: sign | (Float(mantissa) * 0x1p-24).bitPattern)
        case 0x1F:
            // Infinity or NaN; a NaN keeps its payload.
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
        default:
            return Float(bitPattern: sign | (exponent + 127 - 15) << 23 | mantissa << 13)
        }
    }

    // MARK: Helpers

    static let metadataKey = "__metadata__"

    /// Appends `string` as a JSON string literal escaped exactly as serde_json escapes it.
    private static func appendJSONString(_ string: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
            case 0x08: out.append(contentsOf: #"\b"#.utf8)
            case 0x0C: out.append(contentsOf: #"\f"#.utf8)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0..<0x20: out.append(contentsOf: (#"\u00"# + Hex.encode(byte)).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// A name for an error message: quoted, and cut short so a hostile megabyte-long name
    /// cannot flood a log.
    static func quoted(_ name: String) -> String {
        let limit = 80
        return name.count <= limit ? "'\(name)'" : "'\(name.prefix(limit))…' (\(name.utf8.count) bytes)"
    }

    /// The offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code
    /// points above U+10FFFF included), or nil if `bytes` is valid UTF-8.
    static func firstInvalidUTF8Offset(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var i = 0
        let n = bytes.count
        while i < n {
            let lead = bytes[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            var length = 0
            var low: UInt8 = 0x80
            var high: UInt8 = 0xBF
            switch lead {
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; low = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; high = 0x9F
            case 0xF0: length = 4; low = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; high = 0x8F
            default: return i
            }
            guard n - i >= length, (low...high).contains(bytes[i + 1]) else { return i }
            for k in 2..<length where bytes[i + k] & 0xC0 != 0x80 { return i }
            i += length
        }
        return nil
    }
}

/// The tensors and metadata of a safetensors file, as Float32 tensors.
public struct SafetensorsFile: Sendable, Equatable {
    /// Tensor names in file order: by position of their data, which for files written by the
    /// reference (or Tessera) is descending dtype alignment, then name.
    public let names: [String]
    /// Every tensor by name, converted to Float32.
    public let tensors: [String: Tensor]
    /// The dtype each tensor was stored as, so a caller can tell which were converted.
    public let dtypes: [String: Safetensors.DType]
    /// The file's `__metadata__` (empty if it had none).
    public let metadata: [String: String]

    /// The tensor named `name`, if the file has one.
    public subscript(name: String) -> Tensor? { tensors[name] }

    /// The tensors as `(name, tensor)` pairs in file order, the shape `Safetensors.encode`
    /// takes.
    public var namedTensors: [(name: String, tensor: Tensor)] {
        names.map { ($0, tensors[$0]!) }
    }
}

extension Sequential {
    /// Saves every parameter under its PyTorch `nn.Sequential` name (`"0.weight"`, …) to a
    /// safetensors file that `torch.nn.Sequential.load_state_dict(safetensors.torch.load_file(…))`
    /// accepts for the same architecture. The write is atomic and durable (see
    /// `Safetensors.write(_:metadata:to:)`), so a registry may record the version as soon as
    /// this returns.
    public func saveSafetensors(to url: URL, metadata: [String: String] = [:]) throws {
        try Safetensors.write(
            encoded: Safetensors.encode(parameters, layout: parameterLayout, metadata: metadata), to: url)
    }

    /// Replaces every parameter from a safetensors file and returns the file's metadata.
    ///
    /// The file must hold exactly this model's parameter names with their shapes (F16, BF16
    /// and F64 are converted to Float32). On any error the model is left unchanged, and the
    /// error names the file.
    @discardableResult
    public func loadSafetensors(from url: URL) throws -> [String: String] {
        let file = try Safetensors.read(from: url)
        do {
            try loadNamedParameters(file.tensors)
        } catch let error as TensorError {
            throw TensorError(error.code, "safetensors file '\(url.path(percentEncoded: false))': \(error.message)")
        }
        return file.metadata
    }
}

// MARK: - Header parsing

/// A dtype name from a header: one Tessera loads, or one that the format defines (so the
/// layout can still be validated) but Tessera refuses.
private enum HeaderDType {
    case loadable(Safetensors.DType)
    case refused(name: String, elementSize: Int)

    /// The byte-sized dtypes of the format that Tessera does not load. The sub-byte ones
    /// (`F4`, `F6_E2M3`, `F6_E3M2`) have no per-element byte size and are refused outright.
    static let refusedSizes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "F8_E4M3FNUZ": 1,
        "F8_E5M2FNUZ": 1, "I16": 2, "U16": 2, "I32": 4, "U32": 4, "I64": 8, "U64": 8, "C64": 8,
    ]

    var name: String {
        switch self {
        case let .loadable(dtype): dtype.rawValue
        case let .refused(name, _): name
        }
    }

    var elementSize: Int {
        switch self {
        case let .loadable(dtype): dtype.byteCount
        case let .refused(_, size): size
        }
    }
}

private struct HeaderEntry {
    var name: String
    var dtype: HeaderDType
    var shape: [Int]
    var begin: Int
    var end: Int
}

private struct LoadableEntry {
    var name: String
    var dtype: Safetensors.DType
    var shape: [Int]
    var begin: Int
    var end: Int
}

/// A JSON parser that reads the safetensors header schema directly instead of building a
/// document tree: a hostile 100 MB header then costs memory in proportion to what it
/// declares (names and shapes), not several times its size in tree nodes, and every error
/// can name the tensor and field it is about.
///
/// It accepts exactly RFC 8259 JSON (as serde_json does, including its limit of 128 nesting
/// levels, which keeps recursion on `[[[[…` bounded). The input is already known to be UTF-8.
private struct HeaderParser {
    let bytes: UnsafeRawBufferPointer
    var index = 0
    static let maximumDepth = 128

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func parse() throws -> (entries: [HeaderEntry], metadata: [String: String]) {
        skipWhitespace()
        guard peek == UInt8(ascii: "{") else {
            throw malformed("the header must be a JSON object, but it starts with \(describeNext())")
        }
        index += 1
        var entries: [HeaderEntry] = []
        var names = Set<String>()
        var metadata: [String: String]?
        var sawMetadata = false
        try parseMembers { parser, key in
            if key == Safetensors.metadataKey {
                guard !sawMetadata else {
                    throw parser.malformed("'\(Safetensors.metadataKey)' appears more than once")
                }
                sawMetadata = true
                metadata = try parser.parseMetadata()
            } else {
                guard names.insert(key).inserted else {
                    throw parser.malformed("tensor \(Safetensors.quoted(key)) appears more than once in the header")
                }
                entries.append(try parser.parseTensorEntry(name: key))
            }
        }
        skipWhitespace()
        guard index == bytes.count else {
            throw syntax("unexpected \(describeNext()) after the header's JSON object at header byte \(index)")
        }
        return (entries, metadata ?? [:])
    }

    // MARK: Schema

    private mutating func parseMetadata() throws -> [String: String] {
        skipWhitespace()
        if peek == UInt8(ascii: "n") {
            try expectLiteral("null")
            return [:]
        }
        guard peek == UInt8(ascii: "{") else {
            throw malformed("'\(Safetensors.metadataKey)' must be an object of strings, found \(describeNext())")
        }
        index += 1
        var metadata: [String: String] = [:]
        try parseMembers { parser, key in
            parser.skipWhitespace()
            guard parser.peek == UInt8(ascii: "\"") else {
                throw parser.malformed(
                    "metadata value for key \(Safetensors.quoted(key)) must be a string, found \(parser.describeNext())"
                )
            }
            let value = try parser.parseString()
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw parser.malformed("metadata key \(Safetensors.quoted(key)) appears more than once")
            }
        }
        return metadata
    }

    private mutating func parseTensorEntry(name: String) throws -> HeaderEntry {
        let tensor = "tensor \(Safetensors.quoted(name))"
        skipWhitespace()
        guard peek == UInt8(ascii: "{") else {
            throw malformed("\(tensor) must be an object with dtype, shape and data_offsets, found \(describeNext())")
        }
        index += 1
        var dtype: HeaderDType?
        var shape: [Int]?
        var offsets: [Int]?
        try parseMembers { parser, field in
            switch field {
            case "dtype":
                guard dtype == nil else { throw parser.malformed("\(tensor) has field 'dtype' twice") }
                parser.skipWhitespace()
                guard parser.peek == UInt8(ascii: "\"") else {
                    throw parser.malformed("\(tensor): 'dtype' must be a string, found \(parser.describeNext())")
                }
                dtype = try Self.resolveDType(try parser.parseString(), tensor: tensor)
            case "shape":
                guard shape == nil else { throw parser.malformed("\(tensor) has field 'shape' twice") }
                shape = try parser.parseIntegerArray(field: "shape", of: tensor, exactCount: nil)
            case "data_offsets":
                guard offsets == nil else { throw parser.malformed("\(tensor) has field 'data_offsets' twice") }
                offsets = try parser.parseIntegerArray(field: "data_offsets", of: tensor, exactCount: 2)
            default:
                // The reference ignores fields it does not know; so do we, after checking
                // that they are valid JSON.
                try parser.skipValue(depth: 2)
            }
        }
        guard let dtype else { throw malformed("\(tensor) has no 'dtype' field") }
        guard let shape else { throw malformed("\(tensor) has no 'shape' field") }
        guard let offsets else { throw malformed("\(tensor) has no 'data_offsets' field") }
        return HeaderEntry(name: name, dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
    }

    private static func resolveDType(_ name: String, tensor: String) throws -> HeaderDType {
        if let dtype = Safetensors.DType(rawValue: name) { return .loadable(dtype) }
        if let size = HeaderDType.refusedSizes[name] { return .refused(name: name, elementSize: size) }
        let known = ["F4", "F6_E2M3", "F6_E3M2"].contains(name)
        throw TensorError(
            .unsupportedDType,
            known
                ? "\(tensor) has sub-byte dtype \(name), which Tessera does not load"
                : "\(tensor) has unknown dtype \(Safetensors.quoted(name)); Tessera loads F32, F64, F16 and BF16")
    }

    /// An array of non-negative integers that fit in `Int`, optionally of a fixed length.
    private mutating func parseIntegerArray(field: String, of tensor: String, exactCount: Int?) throws -> [Int] {
        let what = exactCount == 2 ? "[begin, end]" : "an array of non-negative integers"
        skipWhitespace()
        guard peek == UInt8(ascii: "[") else {
            throw malformed("\(tensor): '\(field)' must be \(what), found \(describeNext())")
        }
        index += 1
        var values: [Int] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") {
            index += 1
        } else {
            while true {
                if let exactCount, values.count == exactCount {
                    throw malformed(
                        "\(tensor): '\(field)' must hold exactly \(exactCount) integers \(what), found more")
                }
                skipWhitespace()
                values.append(try parseNonNegativeInteger(field: field, of: tensor))
                skipWhitespace()
                if peek == UInt8(ascii: ",") {
                    index += 1
                } else if peek == UInt8(ascii: "]") {
                    index += 1
                    break
                } else {
                    throw syntax(
                        "expected ',' or ']' in '\(field)' of \(tensor) at header byte \(index), found \(describeNext())"
                    )
                }
            }
        }
        if let exactCount, values.count != exactCount {
            throw malformed(
                "\(tensor): '\(field)' must hold exactly \(exactCount) integers \(what), found \(values.count)")
        }
        return values
    }

    private mutating func parseNonNegativeInteger(field: String, of tensor: String) throws -> Int {
        guard let next = peek, next == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(next)
        else {
            throw malformed("\(tensor): '\(field)' must contain only non-negative integers, found \(describeNext())")
        }
        let start = index
        let isPlainInteger = try scanNumber()
        let lexeme = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]).prefix(40), as: UTF8.self)
        guard isPlainInteger, bytes[start] != UInt8(ascii: "-") else {
            throw malformed("\(tensor): '\(field)' must contain only non-negative integers, found \(lexeme)")
        }
        var value = 0
        for digit in bytes[start..<index] {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(digit - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else {
                throw malformed("\(tensor): '\(field)' value \(lexeme) is too large for a 64-bit integer")
            }
            value = sum
        }
        return value
    }

    // MARK: JSON grammar

    /// Parses `"key": value` members up to and including the closing `}`, after the `{` has
    /// been consumed. `member` parses each value.
    private mutating func parseMembers(_ member: (inout HeaderParser, String) throws -> Void) throws {
        skipWhitespace()
        if peek == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else {
                throw syntax("expected a string key at header byte \(index), found \(describeNext())")
            }
            let key = try parseString()
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else {
                throw syntax(
                    "expected ':' after key \(Safetensors.quoted(key)) at header byte \(index), found \(describeNext())"
                )
            }
            index += 1
            try member(&self, key)
            skipWhitespace()
            if peek == UInt8(ascii: ",") {
                index += 1
            } else if peek == UInt8(ascii: "}") {
                index += 1
                return
            } else {
                throw syntax("expected ',' or '}' at header byte \(index), found \(describeNext())")
            }
        }
    }

    /// Validates and skips any JSON value (for fields the format does not define).
    private mutating func skipValue(depth: Int) throws {
        guard depth <= Self.maximumDepth else {
            throw malformed("the header nests deeper than \(Self.maximumDepth) levels at header byte \(index)")
        }
        skipWhitespace()
        switch peek ?? 0 {
        case UInt8(ascii: "{"):
            index += 1
            try parseMembers { parser, _ in try parser.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            index += 1
            skipWhitespace()
            if peek == UInt8(ascii: "]") {
                index += 1
                return
            }
            while true {
                try skipValue(depth: depth + 1)
                skipWhitespace()
                if peek == UInt8(ascii: ",") {
                    index += 1
                } else if peek == UInt8(ascii: "]") {
                    index += 1
                    return
                } else {
                    throw syntax("expected ',' or ']' at header byte \(index), found \(describeNext())")
                }
            }
        case UInt8(ascii: "\""): _ = try parseString()
        case UInt8(ascii: "t"): try expectLiteral("true")
        case UInt8(ascii: "f"): try expectLiteral("false")
        case UInt8(ascii: "n"): try expectLiteral("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try scanNumber()
        default: throw syntax("expected a JSON value at header byte \(index), found \(describeNext())")
        }
    }

    /// Consumes a JSON number; returns whether it had neither fraction nor exponent.
    private mutating func scanNumber() throws -> Bool {
        let start = index
        if peek == UInt8(ascii: "-") { index += 1 }
        guard let first = peek, isDigit(first) else {
            throw syntax("invalid number at header byte \(start): expected a digit")
        }
        index += 1
        if first != UInt8(ascii: "0") {
            while let digit = peek, isDigit(digit) { index += 1 }
        } else if let digit = peek, isDigit(digit) {
            throw syntax("invalid number at header byte \(start): leading zeros are not allowed in JSON")
        }
        var plain = true
        if peek == UInt8(ascii: ".") {
            plain = false
            index += 1
            try scanDigits(numberStart: start)
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            plain = false
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            try scanDigits(numberStart: start)
        }
        return plain
    }

    private mutating func scanDigits(numberStart: Int) throws {
        guard let digit = peek, isDigit(digit) else {
            throw syntax("invalid number at header byte \(numberStart): expected a digit at header byte \(index)")
        }
        while let digit = peek, isDigit(digit) { index += 1 }
    }

    /// Parses a string literal (the opening quote is at `index`), decoding escapes.
    private mutating func parseString() throws -> String {
        let start = index
        index += 1
        var decoded: [UInt8] = []
        var runStart = index
        while true {
            guard let byte = peek else {
                throw syntax("unterminated string starting at header byte \(start)")
            }
            switch byte {
            case UInt8(ascii: "\""):
                decoded.append(contentsOf: bytes[runStart..<index])
                index += 1
                return String(decoding: decoded, as: UTF8.self)
            case UInt8(ascii: "\\"):
                decoded.append(contentsOf: bytes[runStart..<index])
                try decodeEscape(into: &decoded)
                runStart = index
            case 0..<0x20:
                throw syntax(
                    "control character 0x\(Hex.encode(byte)) inside a string at header byte \(index) (JSON requires it escaped)"
                )
            default:
                index += 1
            }
        }
    }

    private mutating func decodeEscape(into out: inout [UInt8]) throws {
        let start = index
        index += 1
        guard let kind = peek else { throw syntax("unterminated escape at header byte \(start)") }
        index += 1
        switch kind {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(kind)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = UInt32(try parseHex4())
            if (0xD800...0xDBFF).contains(scalar) {
                guard peek == UInt8(ascii: "\\"), index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "u") else {
                    throw syntax("unpaired surrogate \\u\(String(scalar, radix: 16)) at header byte \(start)")
                }
                index += 2
                let low = UInt32(try parseHex4())
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw syntax("unpaired surrogate \\u\(String(scalar, radix: 16)) at header byte \(start)")
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00...0xDFFF).contains(scalar) {
                throw syntax("unpaired surrogate \\u\(String(scalar, radix: 16)) at header byte \(start)")
            }
            out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
        default:
            throw syntax("invalid escape '\\\(Character(Unicode.Scalar(kind)))' at header byte \(start)")
        }
    }

    private mutating func parseHex4() throws -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard let byte = peek else { throw syntax("truncated \\u escape at header byte \(index)") }
            guard let digit = Hex.digitValue(byte) else {
                throw syntax("invalid hex digit in \\u escape at header byte \(index)")
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    private mutating func expectLiteral(_ literal: StaticString) throws {
        let expected = UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        guard bytes.count - index >= expected.count,
            UnsafeRawBufferPointer(rebasing: bytes[index..<index + expected.count]).elementsEqual(expected)
        else {
            throw syntax("invalid literal at header byte \(index): expected \(literal)")
        }
        index += expected.count
    }

    // MARK: Scanning

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    private mutating func skipWhitespace() {
        while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    /// What is at `index`, for "expected X, found Y" messages.
    private func describeNext() -> String {
        guard let byte = peek else { return "the end of the header" }
        switch byte {
        case UInt8(ascii: "{"): return "an object"
        case UInt8(ascii: "["): return "an array"
        case UInt8(ascii: "\""): return "a string"
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return "a number"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): return "a boolean"
        case UInt8(ascii: "n"): return "null"
        case 0x21...0x7E: return "'\(Character(Unicode.Scalar(byte)))'"
        default: return "byte 0x\(Hex.encode(byte))"
        }
    }

    private func malformed(_ message: String) -> TensorError {
        TensorError(.malformedFile, message)
    }

    /// An error in the JSON grammar itself, as opposed to valid JSON that breaks the schema.
    private func syntax(_ message: String) -> TensorError {
        TensorError(.malformedFile, "the header is not valid JSON: \(message)")
    }
}
