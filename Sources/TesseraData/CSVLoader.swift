public import Foundation
import TesseraTensor

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// How ``CSVLoader`` turns a CSV file into a ``Dataset``.
///
/// Every field has a default except the label column, which has no sensible guess: a wrong
/// guess would silently train on the wrong target.
public struct CSVOptions: Sendable, Hashable {
    /// Which of the non-label columns become features.
    public enum ColumnSelection: Sendable, Hashable {
        /// Every column except the label, in file order.
        case all
        /// Exactly these columns, in this order (so a model's input order does not depend on
        /// the order of a site's export).
        case only([String])
        /// Every column except the label and these (identifiers, free text, dates…).
        case excluding([String])
    }

    /// What to do with an empty feature cell.
    public enum MissingValuePolicy: Sendable, Hashable {
        /// Fail, naming the cell. The default: imputation is a modelling decision, not a
        /// loader's.
        case reject
        /// Use this value instead.
        case replace(with: Float)
    }

    /// What to do with `nan`, `inf` or `-inf` in a feature cell.
    public enum NonFinitePolicy: Sendable, Hashable {
        /// Fail, naming the cell. The default: one NaN poisons every gradient it touches.
        case reject
        /// Keep the value as written.
        case allow
    }

    /// The header name of the label column.
    public var labelColumn: String
    /// Classification (the default) or regression.
    ///
    /// Classification labels may be integers (`0`, `1`, `2`…, used as class indices) or any
    /// text (numbered in sorted order — numeric order if every label is a number — and kept
    /// in ``Dataset/classNames``).
    public var task: LabelTask
    /// The number of classes, when it must not be guessed from this file.
    ///
    /// Why: in a federation every site must agree on the classes, but one site's file may
    /// lack the rarest class; its largest label + 1 would then be too small. `nil` infers it.
    public var classCount: Int?
    /// The class labels as written in the file, in class-index order. When given, label `t`
    /// becomes `classNames.firstIndex(of: t)` and any other label is an error, so every site
    /// maps text labels to the same indices even if one of them has no sample of some class.
    public var classNames: [String]?
    /// Which columns become features.
    public var columns: ColumnSelection
    /// The policy for empty feature cells (empty labels are always an error).
    public var missingValues: MissingValuePolicy
    /// The policy for non-finite feature values (non-finite regression targets are always an
    /// error).
    public var nonFiniteValues: NonFinitePolicy
    /// The field separator, an ASCII byte (`,` by default; `UInt8(ascii: ";")` for
    /// semicolon-separated exports).
    public var delimiter: UInt8
    /// How many bytes are read from the file at a time. Memory use is this plus the longest
    /// row plus the parsed floats, whatever the size of the file.
    public var chunkSize: Int

    public init(
        labelColumn: String, task: LabelTask = .classification, classCount: Int? = nil, classNames: [String]? = nil,
        columns: ColumnSelection = .all, missingValues: MissingValuePolicy = .reject,
        nonFiniteValues: NonFinitePolicy = .reject, delimiter: UInt8 = UInt8(ascii: ","), chunkSize: Int = 1 << 20
    ) {
        self.labelColumn = labelColumn
        self.task = task
        self.classCount = classCount
        self.classNames = classNames
        self.columns = columns
        self.missingValues = missingValues
        self.nonFiniteValues = nonFiniteValues
        self.delimiter = delimiter
        self.chunkSize = chunkSize
    }
}

/// Loads a CSV file with a header row into a ``Dataset``, streaming.
///
/// Why streaming: a site's export can be larger than the machine's spare memory many times
/// over as text. The loader reads the file in ``CSVOptions/chunkSize`` pieces into one reused
/// buffer, parses every complete row in it, carries the incomplete tail over to the next
/// read, and appends the numbers straight into the output `[Float]` (whose capacity is
/// estimated from the file size, so it is not doubled and copied as it grows). Peak memory is
/// therefore about the size of the float output — 4 bytes per cell — plus one chunk, never the
/// text of the file.
///
/// The dialect is RFC 4180 with the usual relaxations:
/// - the first non-blank row is the header; column names are trimmed of spaces;
/// - fields may be quoted with `"`, which allows delimiters, line breaks and `""` (an escaped
///   quote) inside them; a quote inside an unquoted field is an ordinary character;
/// - rows end with LF or CRLF; blank lines are skipped; a UTF-8 byte-order mark is ignored;
/// - numbers are read exactly as the C library's `strtof` reads them in the "C" locale (`1`,
///   `-2.5`, `1e-3`, `nan`, `inf`), with an exact fast path for plain short decimals; spaces
///   around a number are ignored.
///
/// Every error names the file, the 1-based line number of the row (the number a text editor
/// shows, also when an earlier quoted field spans lines) and the column.
public enum CSVLoader {
    /// Loads `url` as a dataset.
    ///
    /// - Throws: ``DataError`` with the file, row and column of the first problem.
    public static func load(_ url: URL, options: CSVOptions) throws -> Dataset {
        var parser = try CSVParser(path: url.path, options: options, headerOnly: false)
        try parser.run()
        return try parser.makeDataset()
    }

    /// The column names in the header of `url` (reads only as far as the header): lets a
    /// configuration be validated against a site's file before anything is loaded.
    public static func columns(in url: URL, delimiter: UInt8 = UInt8(ascii: ",")) throws -> [String] {
        var parser = try CSVParser(
            path: url.path, options: CSVOptions(labelColumn: "", delimiter: delimiter), headerOnly: true)
        try parser.run()
        guard let header = parser.header else {
            throw DataError(.emptyFile, "\(url.path): the file is empty; expected a header row", file: url.path)
        }
        return header
    }
}

/// The incremental parser behind ``CSVLoader``. One instance reads one file once.
struct CSVParser {
    private enum Role {
        case skip
        case label
        case feature(slot: Int)
    }

    let path: String
    let options: CSVOptions
    let headerOnly: Bool

    private(set) var header: [String]?
    private var headerLine = 0
    private var roles: [Role] = []
    private var featureNames: [String] = []
    private var width = 0

    /// The line number (1-based) at which the next record starts.
    private var line = 1
    private var rows = 0
    private var features: [Float] = []
    private var labels: [Float] = []
    private var rowValues: [Float] = []
    /// Classification labels: distinct label texts in first-seen order, and their provisional
    /// ids (stored as floats in `labels` until the final mapping is known).
    private var labelIDs: [String: Int] = [:]
    private var labelTexts: [String] = []
    /// The UTF-8 bytes of each of `labelTexts`, for the byte-comparison fast path.
    private var labelBytes: [[UInt8]] = []
    /// The class index of each label text, when ``CSVOptions/classNames`` fixes them.
    private var fixedClasses: [String: Int]?

    private var quotedScratch: [UInt8] = []
    private var numberScratch: [CChar] = [CChar](repeating: 0, count: 128)
    private var fileSize = 0
    /// Bytes of the file up to the end of the record being parsed (for the size estimate).
    private var offsetAfterRecord = 0
    private var stopped = false

    init(path: String, options: CSVOptions, headerOnly: Bool) throws {
        self.path = path
        self.options = options
        self.headerOnly = headerOnly
        if let names = options.classNames {
            guard options.task == .classification, !names.isEmpty, Set(names).count == names.count else {
                throw DataError(
                    .invalidArgument, "classNames must be a non-empty list of distinct labels for a classification task"
                )
            }
            if let count = options.classCount, count != names.count {
                throw DataError(
                    .invalidArgument, "classCount \(count) disagrees with the \(names.count) classNames given")
            }
            fixedClasses = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        }
        guard options.chunkSize >= 1 else {
            throw DataError(.invalidArgument, "chunkSize must be at least 1 byte, got \(options.chunkSize)")
        }
        guard options.delimiter < 0x80, options.delimiter != UInt8(ascii: "\""),
            options.delimiter != UInt8(ascii: "\n"), options.delimiter != UInt8(ascii: "\r")
        else {
            throw DataError(.invalidArgument, "the delimiter must be an ASCII byte other than a quote or a line break")
        }
    }

    // MARK: Reading

    mutating func run() throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw DataError(.ioFailure, "\(path): cannot open the file: \(reason)", file: path)
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG { fileSize = Int(info.st_size) }

        let chunk = options.chunkSize
        var capacity = chunk * 2
        var buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var filled = 0
        var consumedBefore = 0  // file bytes before the buffer's first byte
        var atStart = true
        var eof = false
        while !eof && !stopped {
            if capacity - filled < chunk {
                // A row longer than a chunk: grow so the whole row fits (memory stays bounded
                // by the longest row).
                let bigger = UnsafeMutableRawPointer.allocate(byteCount: filled + chunk, alignment: 16)
                bigger.copyMemory(from: buffer, byteCount: filled)
                buffer.deallocate()
                buffer = bigger
                capacity = filled + chunk
            }
            var n: Int
            repeat {
                n = read(fd, buffer + filled, chunk)
            } while n < 0 && errno == EINTR
            if n < 0 {
                let reason = String(cString: strerror(errno))
                throw DataError(.ioFailure, "\(path): read failed: \(reason)", file: path)
            }
            if n == 0 { eof = true }
            filled += n
            let bytes = buffer.assumingMemoryBound(to: UInt8.self)
            var position = 0
            if atStart {
                if filled < 3 && !eof { continue }  // wait for enough bytes to recognise a BOM
                if filled >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { position = 3 }
                atStart = false
            }
            while !stopped, let end = Self.recordEnd(bytes, from: position, to: filled, delimiter: options.delimiter) {
                offsetAfterRecord = consumedBefore + end + 1
                try parseRecord(bytes + position, count: end - position)
                position = end + 1
            }
            if eof && !stopped && position < filled {
                offsetAfterRecord = consumedBefore + filled
                try parseRecord(bytes + position, count: filled - position)
                position = filled
            }
            consumedBefore += position
            if filled > position { (buffer).copyMemory(from: buffer + position, byteCount: filled - position) }
            filled -= position
        }
        if !headerOnly && header == nil {
            throw DataError(.emptyFile, "\(path): the file is empty; expected a header row", file: path)
        }
    }

    /// The index of the line feed that ends the record starting at `start`, or `nil` if the
    /// record is not complete in `bytes[start..<end]`. Follows the same grammar as the field
    /// parser, so a quote only opens a quoted field at the start of a field.
    static func recordEnd(
        _ bytes: UnsafeMutablePointer<UInt8>, from start: Int, to end: Int, delimiter: UInt8
    )
        -> Int?
    {
        let quote = UInt8(ascii: "\"")
        let newline = UInt8(ascii: "\n")
        // 0: field start, 1: unquoted, 2: inside quotes, 3: just after a quote inside quotes.
        var state = 0
        var i = start
        while i < end {
            let c = bytes[i]
            switch state {
            case 0:
                if c == newline { return i }
                state = c == quote ? 2 : (c == delimiter ? 0 : 1)
            case 1:
                if c == newline { return i }
                if c == delimiter { state = 0 }
            case 2:
                if c == quote { state = 3 }
            default:
                if c == newline { return i }
                state = c == quote ? 2 : (c == delimiter ? 0 : 1)
            }
            i += 1
        }
        return nil
    }

    // MARK: Records

    private mutating func parseRecord(_ record: UnsafeMutablePointer<UInt8>, count rawCount: Int) throws {
        var count = rawCount
        if count > 0 && record[count - 1] == UInt8(ascii: "\r") { count -= 1 }
        if count == 0 {
            line += 1
            return
        }
        let recordLine = line
        var embeddedNewlines = 0
        let quote = UInt8(ascii: "\"")
        let delimiter = options.delimiter
        let columnCount = header?.count ?? 0
        var names: [String] = []
        var fieldIndex = 0
        var i = 0
        while true {
            if i < count && record[i] == quote {
                // Borrow the scratch buffer out of `self` so `handleField` can mutate `self`.
                var scratch: [UInt8] = []
                swap(&scratch, &quotedScratch)
                defer { swap(&scratch, &quotedScratch) }
                scratch.removeAll(keepingCapacity: true)
                i += 1
                var closed = false
                while i < count {
                    let c = record[i]
                    if c == quote {
                        if i + 1 < count && record[i + 1] == quote {
                            scratch.append(quote)
                            i += 2
                            continue
                        }
                        i += 1
                        closed = true
                        break
                    }
                    if c == UInt8(ascii: "\n") { embeddedNewlines += 1 }
                    scratch.append(c)
                    i += 1
                }
                if !closed {
                    throw DataError(
                        .malformedQuoting,
                        "\(path): row \(recordLine)\(columnLabel(fieldIndex)): a quoted field is not closed before the end of the file",
                        file: path, row: recordLine, column: columnName(fieldIndex))
                }
                if i < count && record[i] != delimiter {
                    throw DataError(
                        .malformedQuoting,
                        "\(path): row \(recordLine)\(columnLabel(fieldIndex)): unexpected text after the closing quote of a field (a quote inside a quoted field is written as \"\")",
                        file: path, row: recordLine, column: columnName(fieldIndex))
                }
                let n = scratch.count
                scratch.append(0)  // so an empty field still has a base address
                try scratch.withUnsafeMutableBufferPointer { field in
                    try handleField(field.baseAddress!, count: n, index: fieldIndex, line: recordLine, names: &names)
                }
            } else {
                let start = i
                while i < count && record[i] != delimiter { i += 1 }
                try handleField(record + start, count: i - start, index: fieldIndex, line: recordLine, names: &names)
            }
            fieldIndex += 1
            if i >= count { break }
            i += 1  // the delimiter; a trailing one is followed by one more (empty) field
        }
        line = recordLine + 1 + embeddedNewlines

        if header == nil {
            try installHeader(names, line: recordLine)
            if headerOnly { stopped = true }
            return
        }
        guard fieldIndex == columnCount else {
            throw DataError(
                .raggedRow,
                "\(path): row \(recordLine) has \(fieldIndex) field\(fieldIndex == 1 ? "" : "s") but the header (row \(headerLine)) has \(columnCount) columns",
                file: path, row: recordLine)
        }
        features.append(contentsOf: rowValues)
        rows += 1
        if rows == 1024 || features.count + width > features.capacity { reserveForRemainingRows() }
    }

    /// Grows the output to the number of rows the rest of the file is likely to hold, judged
    /// from the bytes per row so far, so the array is not doubled (and copied) repeatedly.
    private mutating func reserveForRemainingRows() {
        guard fileSize > 0, rows > 0 else { return }
        let parsed = max(1, offsetAfterRecord)
        let bytesPerRow = Double(parsed) / Double(rows)
        let remainingRows = Double(max(0, fileSize - parsed)) / bytesPerRow
        let target = rows + Int(remainingRows * 1.05) + 64
        if target * width > features.capacity { features.reserveCapacity(target * width) }
        if target > labels.capacity { labels.reserveCapacity(target) }
    }

    private mutating func installHeader(_ names: [String], line headerLine: Int) throws {
        header = names
        self.headerLine = headerLine
        if headerOnly { return }
        var seen: [String: Int] = [:]
        for (i, name) in names.enumerated() {
            if let first = seen[name] {
                throw DataError(
                    .duplicateColumn,
                    "\(path): row \(headerLine): columns \(first + 1) and \(i + 1) are both named \"\(name)\"; column names must be unique",
                    file: path, row: headerLine, column: name)
            }
            seen[name] = i
        }
        let available = names.map { "\"\($0)\"" }.joined(separator: ", ")
        guard let labelIndex = seen[options.labelColumn] else {
            throw DataError(
                .missingColumn,
                "\(path): there is no column named \"\(options.labelColumn)\" to use as the label; the columns are: \(available)",
                file: path, row: headerLine, column: options.labelColumn)
        }
        roles = [Role](repeating: .skip, count: names.count)
        roles[labelIndex] = .label
        switch options.columns {
        case .all:
            for i in names.indices where i != labelIndex {
                roles[i] = .feature(slot: featureNames.count)
                featureNames.append(names[i])
            }
        case .only(let wanted):
            for name in wanted {
                guard let i = seen[name] else {
                    throw DataError(
                        .missingColumn,
                        "\(path): feature column \"\(name)\" is not in the header; the columns are: \(available)",
                        file: path, row: headerLine, column: name)
                }
                guard i != labelIndex else {
                    throw DataError(
                        .invalidArgument, "\(path): column \"\(name)\" is the label and cannot also be a feature",
                        file: path, column: name)
                }
                if case .feature = roles[i] {
                    throw DataError(
                        .duplicateColumn, "\(path): feature column \"\(name)\" is listed twice", file: path,
                        column: name)
                }
                roles[i] = .feature(slot: featureNames.count)
                featureNames.append(name)
            }
        case .excluding(let ignored):
            for name in ignored where seen[name] == nil {
                throw DataError(
                    .missingColumn,
                    "\(path): column \"\(name)\" (to be ignored) is not in the header; the columns are: \(available)",
                    file: path, row: headerLine, column: name)
            }
            let ignoredSet = Set(ignored)
            for i in names.indices where i != labelIndex && !ignoredSet.contains(names[i]) {
                roles[i] = .feature(slot: featureNames.count)
                featureNames.append(names[i])
            }
        }
        width = featureNames.count
        guard width > 0 else {
            throw DataError(
                .invalidArgument, "\(path): no feature columns are left besides the label \"\(options.labelColumn)\"",
                file: path)
        }
        rowValues = [Float](repeating: 0, count: width)
    }

    // MARK: Fields

    private func columnName(_ index: Int) -> String? {
        guard let header, index < header.count else { return nil }
        return header[index]
    }

    private func columnLabel(_ index: Int) -> String {
        columnName(index).map { ", column \"\($0)\"" } ?? ""
    }

    private mutating func handleField(
        _ field: UnsafeMutablePointer<UInt8>, count: Int, index: Int, line: Int, names: inout [String]
    ) throws {
        guard header != nil else {
            names.append(
                String(decoding: UnsafeBufferPointer(start: field, count: count), as: UTF8.self)
                    .trimmingCharacters(in: .whitespaces))
            return
        }
        guard index < roles.count else { return }  // a ragged row; reported once the row is counted
        switch roles[index] {
        case .skip:
            return
        case .feature(let slot):
            rowValues[slot] = try parseFeature(field, count: count, index: index, line: line)
        case .label:
            labels.append(try parseLabel(field, count: count, index: index, line: line))
        }
    }

    private mutating func parseFeature(
        _ field: UnsafeMutablePointer<UInt8>, count: Int, index: Int, line: Int
    )
        throws -> Float
    {
        guard let value = try parseNumber(field, count: count, index: index, line: line) else {
            switch options.missingValues {
            case .replace(let fill): return fill
            case .reject:
                throw DataError(
                    .emptyCell,
                    "\(path): row \(line), column \"\(header![index])\": the cell is empty (set a missing-value policy to fill it)",
                    file: path, row: line, column: header![index])
            }
        }
        if !value.isFinite && options.nonFiniteValues == .reject {
            throw DataError(
                .nonFiniteValue,
                "\(path): row \(line), column \"\(header![index])\": \(value) is not a finite number",
                file: path, row: line, column: header![index])
        }
        return value
    }

    private mutating func parseLabel(
        _ field: UnsafeMutablePointer<UInt8>, count: Int, index: Int, line: Int
    )
        throws -> Float
    {
        let name = header![index]
        switch options.task {
        case .regression:
            guard let value = try parseNumber(field, count: count, index: index, line: line) else {
                throw DataError(
                    .emptyCell, "\(path): row \(line), column \"\(name)\": the label is empty", file: path, row: line,
                    column: name)
            }
            guard value.isFinite else {
                throw DataError(
                    .nonFiniteValue, "\(path): row \(line), column \"\(name)\": the label \(value) is not finite",
                    file: path, row: line, column: name)
            }
            return value
        case .classification:
            let (start, end) = Self.trimmed(field, count: count)
            let bytes = UnsafeBufferPointer(start: UnsafePointer(field) + start, count: end - start)
            // Most tasks have a handful of classes: comparing bytes with each known label is
            // cheaper than hashing a String for every row.
            if fixedClasses == nil && labelTexts.count <= 32 && !bytes.isEmpty {
                for (id, known) in labelBytes.enumerated() where known.count == bytes.count {
                    if known.withUnsafeBufferPointer({ memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0 })
                    {
                        return Float(id)
                    }
                }
            }
            let text = String(decoding: bytes, as: UTF8.self)
            guard !text.isEmpty else {
                throw DataError(
                    .emptyCell, "\(path): row \(line), column \"\(name)\": the label is empty", file: path, row: line,
                    column: name)
            }
            if let fixedClasses {
                guard let id = fixedClasses[text] else {
                    throw DataError(
                        .invalidLabel,
                        "\(path): row \(line), column \"\(name)\": label \"\(text)\" is not one of the classes \(options.classNames!.map { "\"\($0)\"" }.joined(separator: ", "))",
                        file: path, row: line, column: name)
                }
                return Float(id)
            }
            if let id = labelIDs[text] { return Float(id) }
            let id = labelTexts.count
            guard id < 1 << 24 else {
                throw DataError(
                    .invalidLabel,
                    "\(path): row \(line), column \"\(name)\": more than 2^24 distinct labels; is this a regression target?",
                    file: path, row: line, column: name)
            }
            labelIDs[text] = id
            labelTexts.append(text)
            labelBytes.append(Array(bytes))
            return Float(id)
        }
    }

    /// The bounds of `field` without leading and trailing spaces and tabs.
    @inline(__always)
    static func trimmed(_ field: UnsafeMutablePointer<UInt8>, count: Int) -> (start: Int, end: Int) {
        var start = 0
        var end = count
        while start < end && (field[start] == 0x20 || field[start] == 0x09) { start += 1 }
        while end > start && (field[end - 1] == 0x20 || field[end - 1] == 0x09) { end -= 1 }
        return (start, end)
    }

    /// Exact powers of ten as `Float` (10^10 = 2^10 · 5^10 is the last one a float holds exactly).
    private static let powersOfTen: [Float] = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10]

    /// Parses the common case of a plain decimal — `[+-]digits[.digits][e[+-]digits]` whose
    /// digits form an integer M ≤ 2^24 and whose decimal exponent k has |k| ≤ 10 — without
    /// the C library, or returns `nil` to defer to `strtof`.
    ///
    /// Why this is exact: M and 10^|k| are both exactly representable as floats, so `M · 10^k`
    /// or `M / 10^-k` is a single IEEE operation and therefore correctly rounded — the same
    /// float `strtof` returns (Clinger's fast path). It makes typical CSV cells several times
    /// cheaper to parse; anything else (long mantissas, large exponents, `nan`, hex) takes the
    /// `strtof` path.
    @inline(__always)
    static func fastDecimal(_ p: UnsafePointer<UInt8>, count n: Int) -> Float? {
        var i = 0
        var negative = false
        if p[0] == UInt8(ascii: "-") {
            negative = true
            i = 1
        } else if p[0] == UInt8(ascii: "+") {
            i = 1
        }
        var mantissa: UInt64 = 0
        var sawDigit = false
        var exponent = 0
        while i < n, p[i] &- 48 < 10 {
            mantissa = mantissa &* 10 &+ UInt64(p[i] &- 48)
            if mantissa > 1 << 24 { return nil }
            sawDigit = true
            i += 1
        }
        if i < n && p[i] == UInt8(ascii: ".") {
            i += 1
            while i < n, p[i] &- 48 < 10 {
                mantissa = mantissa &* 10 &+ UInt64(p[i] &- 48)
                if mantissa > 1 << 24 { return nil }
                exponent -= 1
                sawDigit = true
                i += 1
            }
        }
        guard sawDigit else { return nil }
        if i < n && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            i += 1
            var exponentNegative = false
            if i < n && (p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+")) {
                exponentNegative = p[i] == UInt8(ascii: "-")
                i += 1
            }
            var value = 0
            var digits = 0
            while i < n, p[i] &- 48 < 10 {
                value = value * 10 + Int(p[i] &- 48)
                if value > 100 { return nil }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            exponent += exponentNegative ? -value : value
        }
        guard i == n else { return nil }
        var result = Float(mantissa)
        if mantissa != 0 {
            if exponent > 0 {
                guard exponent <= 10 else { return nil }
                result *= powersOfTen[exponent]
            } else if exponent < 0 {
                guard exponent >= -10 else { return nil }
                result /= powersOfTen[-exponent]
            }
        }
        return negative ? -result : result
    }

    /// Parses a number, or returns `nil` for an empty (or all-space) cell.
    private mutating func parseNumber(
        _ field: UnsafeMutablePointer<UInt8>, count: Int, index: Int, line: Int
    )
        throws -> Float?
    {
        let (start, end) = Self.trimmed(field, count: count)
        let length = end - start
        if length == 0 { return nil }
        if let value = Self.fastDecimal(field + start, count: length) { return value }
        if length + 1 > numberScratch.count {
            numberScratch = [CChar](repeating: 0, count: length + 1)
        }
        var value: Float = 0
        let consumed = numberScratch.withUnsafeMutableBufferPointer { scratch -> Int in
            let base = scratch.baseAddress!
            UnsafeMutableRawPointer(base).copyMemory(from: field + start, byteCount: length)
            base[length] = 0
            var stop: UnsafeMutablePointer<CChar>? = nil
            value = strtof(base, &stop)
            return stop.map { $0 - base } ?? 0
        }
        guard consumed == length else {
            let text = String(
                decoding: UnsafeBufferPointer(start: field + start, count: min(length, 40)), as: UTF8.self)
            let name = header![index]
            throw DataError(
                .nonNumericCell,
                "\(path): row \(line), column \"\(name)\": \"\(text)\(length > 40 ? "…" : "")\" is not a number",
                file: path, row: line, column: name)
        }
        return value
    }

    // MARK: Result

    mutating func makeDataset() throws -> Dataset {
        guard rows > 0 else {
            throw DataError(
                .emptyFile, "\(path): the file has a header (row \(headerLine)) but no data rows", file: path,
                row: headerLine)
        }
        let featureTensor = Tensor(shape: [rows, width], scalars: features)
        features = []
        switch options.task {
        case .regression:
            return Dataset(
                unchecked: featureTensor, labels: Tensor(labels), featureNames: featureNames, classCount: nil,
                classNames: nil)
        case .classification:
            let (mapping, classCount, classNames) = try classMapping()
            labels.withUnsafeMutableBufferPointer { ids in
                for i in ids.indices { ids[i] = Float(mapping[Int(ids[i])]) }
            }
            return Dataset(
                unchecked: featureTensor, labels: Tensor(labels), featureNames: featureNames,
                classCount: classCount, classNames: classNames)
        }
    }

    /// Decides how label texts become class indices: integers are used as they are; any
    /// other text is numbered in sorted order (numeric order if every label is a number).
    private func classMapping() throws -> (mapping: [Int], classCount: Int, classNames: [String]?) {
        if let names = options.classNames { return (Array(names.indices), names.count, names) }
        let numbers = labelTexts.map { Double($0) }
        let labelName = options.labelColumn
        if numbers.allSatisfy({ $0 != nil && $0! >= 0 && $0!.rounded() == $0! }) {
            // Bounded before any conversion to Int: a label such as "1e300" or "inf" is a whole
            // number to Double and would trap.
            if let too = labelTexts.indices.first(where: { !(numbers[$0]! < 1_000_000) }) {
                throw DataError(
                    .invalidLabel,
                    "\(path), column \"\(labelName)\": class label \(labelTexts[too].prefix(40)) is too large for a class index; use the regression task for a numeric target",
                    file: path, column: labelName)
            }
            let values = numbers.map { Int($0!) }
            let largest = values.max() ?? 0
            if let requested = options.classCount {
                guard largest < requested else {
                    throw DataError(
                        .invalidLabel,
                        "\(path), column \"\(labelName)\": class label \(largest) does not fit the \(requested) classes requested",
                        file: path, column: labelName)
                }
                return (values, requested, nil)
            }
            return (values, largest + 1, nil)
        }
        if let requested = options.classCount, requested != labelTexts.count {
            throw DataError(
                .invalidLabel,
                "\(path), column \"\(labelName)\": \(labelTexts.count) distinct text labels but \(requested) classes requested; list the classes in classNames so every site numbers them alike",
                file: path, column: labelName)
        }
        let order: [Int]
        if numbers.allSatisfy({ $0 != nil }) {
            order = labelTexts.indices.sorted { numbers[$0]! < numbers[$1]! }
        } else {
            order = labelTexts.indices.sorted { labelTexts[$0] < labelTexts[$1] }
        }
        var mapping = [Int](repeating: 0, count: labelTexts.count)
        for (rank, id) in order.enumerated() { mapping[id] = rank }
        return (mapping, labelTexts.count, order.map { labelTexts[$0] })
    }
}
