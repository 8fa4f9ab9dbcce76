public import Foundation
public import TesseraTensor

/// Reads numpy `.npy` arrays (format versions 1.0, 2.0 and 3.0) as `Float` tensors.
///
/// Why NPY: it is what a researcher's preprocessing script in Python most easily writes
/// (`np.save`), it is exact (no decimal round trip) and it is simple enough to read without
/// numpy. Supported element types are little-endian (or byte-order-free) floats and
/// integers: `<f4`, `<f8`, `|i1`, `|u1`, `<i2`, `<u2`, `<i4`, `<u4`, `<i8`, `<u8` (`=` is read
/// as little-endian on the little-endian machines Tessera runs on). Everything is converted to
/// `Float`: `<f8` is rounded to the nearest float, and integers above 2^24 lose precision
/// (class labels that large are rejected). Only C-order arrays are read; `fortran_order: True`
/// is rejected rather than silently transposed.
///
/// The payload is read straight into the output array (through a 1 MiB conversion buffer for
/// non-`<f4` types), so loading needs about the memory of the result.
public enum NPYLoader {
    /// What an NPY header says about its array.
    public struct Header: Sendable, Hashable {
        /// The format's major version: 1, 2 or 3 (2 allows headers over 64 KiB, 3 UTF-8 text).
        public var majorVersion: UInt8
        /// The format's minor version (0 for every published version).
        public var minorVersion: UInt8
        /// The numpy type string, such as `<f4`.
        public var descr: String
        /// Whether the array is stored in Fortran (column-major) order.
        public var fortranOrder: Bool
        /// The array's shape; `[]` for a 0-d array.
        public var shape: [Int]
        /// The byte offset of the first element.
        public var dataOffset: Int
        var elementType: ElementType
    }

    /// Loads one `.npy` file as a tensor of its shape.
    ///
    /// - Throws: ``DataError`` naming the file: `malformedHeader`, `unsupportedDType`,
    ///   `unsupportedLayout`, `truncatedData` or `trailingData`.
    public static func loadTensor(_ url: URL) throws -> Tensor {
        let reader = try FileReader(path: url.path)
        let header = try readHeader(reader)
        let count = checkedProduct(header.shape)!  // checked when the header was parsed
        let values = try readElements(
            reader, count: count, type: header.elementType, what: "\(header.descr) data for shape \(header.shape)")
        if try reader.hasMoreBytes() {
            let extra = reader.size.map { " (\($0 - header.dataOffset - count * header.elementType.size) bytes)" } ?? ""
            throw DataError(
                .trailingData,
                "\(url.path): the file has data after the \(count) elements of shape \(header.shape) its header declares\(extra)",
                file: url.path)
        }
        return Tensor(shape: header.shape, scalars: values)
    }

    /// Reads only the header of `url`.
    public static func header(of url: URL) throws -> Header {
        try readHeader(FileReader(path: url.path))
    }

    /// Loads a features array `[N, F…]` and a labels array `[N]` (or `[N, 1]`) as a dataset.
    ///
    /// - Parameters:
    ///   - task: classification (labels must be integers ≥ 0) or regression.
    ///   - classCount: the number of classes; `nil` infers the largest label + 1. Give it in a
    ///     federation, where a site may lack the highest class.
    /// - Throws: ``DataError``; a sample-count mismatch names both files.
    public static func loadDataset(
        features: URL, labels: URL, task: LabelTask = .classification, classCount: Int? = nil,
        featureNames: [String]? = nil
    ) throws -> Dataset {
        var x = try loadTensor(features)
        var y = try loadTensor(labels)
        if x.rank == 1 { x = x.reshaped([x.shape[0], 1]) }
        if y.rank == 2 && y.shape[1] == 1 { y = y.reshaped([y.shape[0]]) }
        guard x.rank >= 1, y.rank == 1 else {
            throw DataError(
                .shapeMismatch,
                "\(labels.path): labels must have shape [N] or [N, 1], found \(y.shape)", file: labels.path)
        }
        guard x.shape[0] == y.shape[0] else {
            throw DataError(
                .shapeMismatch,
                "\(features.path) holds \(x.shape[0]) samples (shape \(x.shape)) but \(labels.path) holds \(y.shape[0]) labels",
                file: labels.path)
        }
        switch task {
        case .regression:
            return try Dataset(features: x, labels: y, featureNames: featureNames)
        case .classification:
            let classes = try validateClassLabels(y.scalars, classCount: classCount, file: labels.path)
            return try Dataset(features: x, labels: y, featureNames: featureNames, classCount: classes)
        }
    }

    // MARK: Header

    static func readHeader(_ reader: FileReader) throws -> Header {
        let path = reader.path
        func malformed(_ why: String) -> DataError {
            DataError(.malformedHeader, "\(path): not a valid NPY file: \(why)", file: path)
        }
        let prefix = try reader.readBytes(8)
        guard prefix.count == 8, Array(prefix[0..<6]) == [0x93] + Array("NUMPY".utf8) else {
            throw malformed("it does not start with the magic bytes \\x93NUMPY")
        }
        let major = prefix[6]
        let minor = prefix[7]
        let headerLength: Int
        switch major {
        case 1:
            let b = try reader.readBytes(2)
            guard b.count == 2 else { throw malformed("the header length is cut off") }
            headerLength = Int(b[0]) | Int(b[1]) << 8
        case 2, 3:
            let b = try reader.readBytes(4)
            guard b.count == 4 else { throw malformed("the header length is cut off") }
            headerLength = Int(b[0]) | Int(b[1]) << 8 | Int(b[2]) << 16 | Int(b[3]) << 24
        default:
            throw DataError(
                .malformedHeader,
                "\(path): NPY format version \(major).\(minor) is not supported (1.0, 2.0 and 3.0 are)",
                file: path)
        }
        if let size = reader.size, reader.offset + headerLength > size {
            throw malformed(
                "the header declares \(headerLength) bytes but the file has only \(size - reader.offset) left")
        }
        let headerBytes = try reader.readBytes(headerLength)
        guard headerBytes.count == headerLength else { throw malformed("the header is cut off") }
        // Version 3.0 headers are UTF-8; 1.0 and 2.0 are Latin-1, which for the keys and
        // values numpy writes is the same ASCII.
        let text =
            major == 3
            ? String(decoding: headerBytes, as: UTF8.self)
            : String(headerBytes.map { Character(Unicode.Scalar($0)) })
        var parser = PythonLiteralParser(text: text)
        let dict: [String: PythonLiteralParser.Value]
        do {
            dict = try parser.parseDictionary()
        } catch let error as PythonLiteralParser.ParseError {
            throw malformed(
                "the header dictionary cannot be parsed (\(error.message)): \(text.trimmingCharacters(in: .whitespacesAndNewlines))"
            )
        }
        guard case .string(let descr)? = dict["descr"] else {
            if case .list? = dict["descr"] {
                throw DataError(
                    .unsupportedDType,
                    "\(path): structured (record) arrays are not supported; save a plain numeric array",
                    file: path)
            }
            throw malformed("the header has no 'descr' string")
        }
        guard case .bool(let fortran)? = dict["fortran_order"] else {
            throw malformed("the header has no 'fortran_order' True/False")
        }
        guard case .tuple(let shape)? = dict["shape"] else {
            throw malformed("the header has no 'shape' tuple")
        }
        guard checkedProduct(shape) != nil else {
            throw malformed("the shape \(shape) is negative or too large")
        }
        guard let type = elementType(descr) else {
            throw DataError(
                .unsupportedDType,
                "\(path): element type '\(descr)' is not supported; use one of <f4, <f8, |u1, |i1, <i2, <u2, <i4, <u4, <i8, <u8 (for example `array.astype('<f4')`)",
                file: path)
        }
        if fortran && shape.count > 1 {
            throw DataError(
                .unsupportedLayout,
                "\(path): the array is stored in Fortran (column-major) order; save it in C order with `np.save(path, np.ascontiguousarray(array))`",
                file: path)
        }
        return Header(
            majorVersion: major, minorVersion: minor, descr: descr, fortranOrder: fortran, shape: shape,
            dataOffset: reader.offset, elementType: type)
    }

    private static func elementType(_ descr: String) -> ElementType? {
        let chars = Array(descr)
        guard chars.count >= 3, let size = Int(String(chars[2...])) else { return nil }
        let order = chars[0]
        let kind: ElementType.Kind
        switch chars[1] {
        case "f": kind = .float
        case "i": kind = .signed
        case "u": kind = .unsigned
        default: return nil
        }
        switch (kind, size) {
        case (.float, 4), (.float, 8), (.signed, 1), (.signed, 2), (.signed, 4), (.signed, 8),
            (.unsigned, 1), (.unsigned, 2), (.unsigned, 4), (.unsigned, 8):
            break
        default:
            return nil
        }
        switch order {
        case "<", "=": return ElementType(kind: kind, size: size, bigEndian: false)
        case "|" where size == 1: return ElementType(kind: kind, size: size, bigEndian: false)
        case ">" where size == 1: return ElementType(kind: kind, size: size, bigEndian: false)
        default: return nil  // big-endian multi-byte, or '|' on a multi-byte type
        }
    }
}

/// Just enough of Python's literal syntax for NPY headers: a dict of string keys whose values
/// are strings, `True`/`False`, integers, tuples of integers, and (to reject them clearly)
/// lists.
struct PythonLiteralParser {
    struct ParseError: Error {
        var message: String
    }

    enum Value: Equatable {
        case string(String)
        case bool(Bool)
        case int(Int)
        case tuple([Int])
        case list
    }

    private let scalars: [Unicode.Scalar]
    private var index = 0

    init(text: String) {
        scalars = Array(text.unicodeScalars)
    }

    mutating func parseDictionary() throws -> [String: Value] {
        skipSpace()
        try expect("{")
        var result: [String: Value] = [:]
        while true {
            skipSpace()
            if peek() == "}" {
                index += 1
                break
            }
            guard case .string(let key) = try parseValue() else { throw ParseError(message: "a key is not a string") }
            skipSpace()
            try expect(":")
            result[key] = try parseValue()
            skipSpace()
            if peek() == "," {
                index += 1
                continue
            }
            skipSpace()
            try expect("}")
            break
        }
        skipSpace()
        guard index == scalars.count else { throw ParseError(message: "unexpected text after the dictionary") }
        return result
    }

    private mutating func parseValue() throws -> Value {
        skipSpace()
        guard let c = peek() else { throw ParseError(message: "unexpected end") }
        switch c {
        case "'", "\"":
            return .string(try parseString())
        case "(":
            index += 1
            var items: [Int] = []
            while true {
                skipSpace()
                if peek() == ")" {
                    index += 1
                    break
                }
                items.append(try parseInt())
                skipSpace()
                if peek() == "," {
                    index += 1
                } else {
                    try expect(")")
                    break
                }
            }
            return .tuple(items)
        case "[":
            // Structured dtypes are lists of tuples: skip to the matching bracket.
            var depth = 0
            repeat {
                guard let d = peek() else { throw ParseError(message: "unclosed list") }
                if d == "[" { depth += 1 }
                if d == "]" { depth -= 1 }
                index += 1
            } while depth > 0
            return .list
        case "T", "F":
            let word = takeWhile { $0.properties.isAlphabetic }
            switch word {
            case "True": return .bool(true)
            case "False": return .bool(false)
            default: throw ParseError(message: "unknown word '\(word)'")
            }
        default:
            return .int(try parseInt())
        }
    }

    private mutating func parseString() throws -> String {
        let quote = scalars[index]
        index += 1
        var out = String.UnicodeScalarView()
        while let c = peek() {
            index += 1
            if c == quote { return String(out) }
            if c == "\\" {
                guard let next = peek() else { break }
                index += 1
                out.append(next)
            } else {
                out.append(c)
            }
        }
        throw ParseError(message: "unterminated string")
    }

    private mutating func parseInt() throws -> Int {
        skipSpace()
        let digits = takeWhile { ("0"..."9").contains($0) || $0 == "-" }
        guard let value = Int(digits) else { throw ParseError(message: "expected an integer") }
        if peek() == "L" { index += 1 }  // Python 2 long suffix in old files
        return value
    }

    private mutating func takeWhile(_ predicate: (Unicode.Scalar) -> Bool) -> String {
        var out = String.UnicodeScalarView()
        while let c = peek(), predicate(c) {
            out.append(c)
            index += 1
        }
        return String(out)
    }

    private func peek() -> Unicode.Scalar? {
        index < scalars.count ? scalars[index] : nil
    }

    private mutating func skipSpace() {
        while let c = peek(), c.properties.isWhitespace { index += 1 }
    }

    private mutating func expect(_ c: Unicode.Scalar) throws {
        guard peek() == c else {
            throw ParseError(message: "expected '\(c)' at character \(index)")
        }
        index += 1
    }
}
