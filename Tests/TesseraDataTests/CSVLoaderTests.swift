import Foundation
import Testing

@testable import TesseraData
@testable import TesseraTensor

@Suite struct CSVLoaderHappyPaths {
    @Test func loadsNumericColumnsAndIntegerLabels() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile(
                "age,bmi,outcome\n61,27.5,1\n45, 31.25 ,0\n70,22,2\n", named: "site.csv", in: dir)
            let data = try CSVLoader.load(url, options: CSVOptions(labelColumn: "outcome"))
            #expect(data.features.shape == [3, 2])
            #expect(data.features.scalars == [61, 27.5, 45, 31.25, 70, 22])
            #expect(data.labels.scalars == [1, 0, 2])
            #expect(data.featureNames == ["age", "bmi"])
            #expect(data.classCount == 3)
            #expect(data.classNames == nil)
        }
    }

    @Test func labelColumnMayBeAnywhereAndRegressionKeepsRealTargets() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("y,a,b\n0.5,1,2\n-1.25,3,4\n", named: "r.csv", in: dir)
            let data = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y", task: .regression))
            #expect(data.features.scalars == [1, 2, 3, 4])
            #expect(data.labels.scalars == [0.5, -1.25])
            #expect(data.classCount == nil)
        }
    }

    @Test func quotedFieldsHoldDelimitersQuotesAndLineBreaks() throws {
        try withTemporaryDirectory { dir in
            let text =
                "id,\"note, free text\",x1,x2,label\n"
                + "a1,\"fever, cough\",1.5,\"2.5\",yes\n"
                + "a2,\"she said \"\"fine\"\"\",3,4,no\n"
                + "a3,\"two\nlines\",5,6,yes\n"
            let url = try writeFile(text, named: "quoted.csv", in: dir)
            let data = try CSVLoader.load(
                url, options: CSVOptions(labelColumn: "label", columns: .excluding(["id", "note, free text"])))
            #expect(data.featureNames == ["x1", "x2"])
            #expect(data.features.scalars == [1.5, 2.5, 3, 4, 5, 6])
            #expect(data.classNames == ["no", "yes"])
            #expect(data.labels.scalars == [1, 0, 1])
            #expect(try CSVLoader.columns(in: url) == ["id", "note, free text", "x1", "x2", "label"])
        }
    }

    @Test func rowNumbersCountLinesInsideQuotedFields() throws {
        try withTemporaryDirectory { dir in
            // Row 2's note spans lines 2-4, so the bad cell is on line 5.
            let url = try writeFile("note,x,y\n\"a\nb\nc\",1,0\n\"d\",oops,1\n", named: "lines.csv", in: dir)
            expectDataError(.nonNumericCell, file: url, row: 5, column: "x", mentioning: ["oops"]) {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y", columns: .excluding(["note"])))
            }
        }
    }

    @Test func stringLabelsMapToSortedClassIndicesAndTheMappingIsExposed() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("x,animal\n1,dog\n2,cat\n3,bird\n4,dog\n", named: "s.csv", in: dir)
            let data = try CSVLoader.load(url, options: CSVOptions(labelColumn: "animal"))
            #expect(data.classNames == ["bird", "cat", "dog"])
            #expect(data.classCount == 3)
            #expect(data.labels.scalars == [2, 1, 0, 2])

            // Numeric labels that are not class indices sort numerically, not as text.
            let numeric = try writeFile("x,grade\n1,10\n2,9\n3,-1\n", named: "n.csv", in: dir)
            let graded = try CSVLoader.load(numeric, options: CSVOptions(labelColumn: "grade"))
            #expect(graded.classNames == ["-1", "9", "10"])
            #expect(graded.labels.scalars == [2, 1, 0])
        }
    }

    @Test func explicitClassNamesFixTheMappingAcrossSites() throws {
        try withTemporaryDirectory { dir in
            // This site has no "low" sample; the explicit list keeps "high" at index 2 anyway.
            let url = try writeFile("x,risk\n1,high\n2,medium\n", named: "c.csv", in: dir)
            let options = CSVOptions(labelColumn: "risk", classNames: ["low", "medium", "high"])
            let data = try CSVLoader.load(url, options: options)
            #expect(data.labels.scalars == [2, 1])
            #expect(data.classCount == 3)

            let bad = try writeFile("x,risk\n1,high\n2,severe\n", named: "bad.csv", in: dir)
            expectDataError(.invalidLabel, file: bad, row: 3, column: "risk", mentioning: ["severe", "\"low\""]) {
                _ = try CSVLoader.load(bad, options: options)
            }
        }
    }

    @Test func classCountOverrideKeepsSitesConsistent() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("x,y\n1,0\n2,1\n", named: "k.csv", in: dir)
            let data = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y", classCount: 10))
            #expect(data.classCount == 10)
            expectDataError(.invalidLabel, file: url, column: "y") {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y", classCount: 1))
            }
        }
    }

    @Test func onlySelectsColumnsInTheGivenOrder() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("a,b,c,y\n1,2,3,0\n4,5,6,1\n", named: "o.csv", in: dir)
            let data = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y", columns: .only(["c", "a"])))
            #expect(data.featureNames == ["c", "a"])
            #expect(data.features.scalars == [3, 1, 6, 4])
        }
    }

    @Test func toleratesCRLFByteOrderMarkBlankLinesAndNoFinalNewline() throws {
        try withTemporaryDirectory { dir in
            let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("\r\nx,y\r\n1,0\r\n\r\n2,1".utf8)
            let url = try writeFile(bytes, named: "crlf.csv", in: dir)
            let data = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y"))
            #expect(data.featureNames == ["x"])
            #expect(data.features.scalars == [1, 2])
            #expect(data.labels.scalars == [0, 1])
        }
    }

    @Test func resultDoesNotDependOnTheChunkSize() throws {
        try withTemporaryDirectory { dir in
            var text = "id,\"a\",b,label\n"
            for i in 0..<200 {
                text += "\(i),\(Float(i) * 0.25),\"\(i % 7)\",\"class \(i % 3)\"\r\n"
            }
            let url = try writeFile(text, named: "chunks.csv", in: dir)
            let reference = try CSVLoader.load(url, options: CSVOptions(labelColumn: "label"))
            #expect(reference.count == 200)
            for chunk in [1, 2, 3, 7, 64, 1000] {
                let data = try CSVLoader.load(url, options: CSVOptions(labelColumn: "label", chunkSize: chunk))
                #expect(data.features == reference.features, "chunk size \(chunk)")
                #expect(data.labels == reference.labels, "chunk size \(chunk)")
                #expect(data.classNames == ["class 0", "class 1", "class 2"])
            }
        }
    }

    @Test func policiesCanFillMissingCellsAndKeepNonFiniteValues() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("a,b,y\n,nan,0\n2,inf,1\n", named: "p.csv", in: dir)
            let data = try CSVLoader.load(
                url,
                options: CSVOptions(labelColumn: "y", missingValues: .replace(with: -1), nonFiniteValues: .allow))
            #expect(data.features[0, 0] == -1)
            #expect(data.features[0, 1].isNaN)
            #expect(data.features[1, 1] == .infinity)
        }
    }

    @Test func semicolonDelimiter() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("a;y\n1.5;0\n2;1\n", named: "semi.csv", in: dir)
            let data = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y", delimiter: UInt8(ascii: ";")))
            #expect(data.features.scalars == [1.5, 2])
        }
    }
}

@Suite struct CSVLoaderErrors {
    @Test func missingLabelColumnListsTheAvailableColumns() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("age,bmi,readmitted\n1,2,0\n", named: "m.csv", in: dir)
            expectDataError(
                .missingColumn, file: url, column: "outcome", mentioning: ["\"age\", \"bmi\", \"readmitted\""]
            ) {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "outcome"))
            }
        }
    }

    @Test func selectedOrIgnoredColumnsMustExist() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("a,b,y\n1,2,0\n", named: "sel.csv", in: dir)
            expectDataError(.missingColumn, file: url, column: "c", mentioning: ["\"a\", \"b\", \"y\""]) {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y", columns: .only(["a", "c"])))
            }
            expectDataError(.missingColumn, file: url, column: "zz") {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y", columns: .excluding(["zz"])))
            }
            expectDataError(.invalidArgument, file: url, column: "y") {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y", columns: .only(["a", "y"])))
            }
        }
    }

    @Test func emptyCellNamesRowAndColumn() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("age,bmi,y\n61,27,1\n62,,0\n", named: "e.csv", in: dir)
            expectDataError(.emptyCell, file: url, row: 3, column: "bmi") {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y"))
            }
        }
    }

    @Test func emptyLabelIsAnErrorWhateverThePolicy() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("a,y\n1,0\n2,\n", named: "el.csv", in: dir)
            expectDataError(.emptyCell, file: url, row: 3, column: "y") {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y", missingValues: .replace(with: 0)))
            }
        }
    }

    @Test func nonNumericCellQuotesTheText() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("age,bmi,y\n61,27,1\n62,12.5kg,0\n", named: "nn.csv", in: dir)
            expectDataError(.nonNumericCell, file: url, row: 3, column: "bmi", mentioning: ["\"12.5kg\""]) {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y"))
            }
        }
    }

    @Test func nanAndInfinityAreRejectedByDefault() throws {
        try withTemporaryDirectory { dir in
            let nan = try writeFile("a,b,y\n1,2,0\n3,NaN,1\n", named: "nan.csv", in: dir)
            expectDataError(.nonFiniteValue, file: nan, row: 3, column: "b") {
                _ = try CSVLoader.load(nan, options: CSVOptions(labelColumn: "y"))
            }
            let inf = try writeFile("a,b,y\n-inf,2,0\n", named: "inf.csv", in: dir)
            expectDataError(.nonFiniteValue, file: inf, row: 2, column: "a") {
                _ = try CSVLoader.load(inf, options: CSVOptions(labelColumn: "y"))
            }
            let target = try writeFile("a,y\n1,inf\n", named: "target.csv", in: dir)
            expectDataError(.nonFiniteValue, file: target, row: 2, column: "y") {
                _ = try CSVLoader.load(target, options: CSVOptions(labelColumn: "y", task: .regression))
            }
        }
    }

    @Test func raggedRowsNameTheRowAndBothCounts() throws {
        try withTemporaryDirectory { dir in
            let short = try writeFile("a,b,y\n1,2,0\n3,1\n", named: "short.csv", in: dir)
            expectDataError(.raggedRow, file: short, row: 3, mentioning: ["2 fields", "3 columns"]) {
                _ = try CSVLoader.load(short, options: CSVOptions(labelColumn: "y"))
            }
            let long = try writeFile("a,b,y\n1,2,0\n\n3,1,1,9\n", named: "long.csv", in: dir)
            expectDataError(.raggedRow, file: long, row: 4, mentioning: ["4 fields", "3 columns"]) {
                _ = try CSVLoader.load(long, options: CSVOptions(labelColumn: "y"))
            }
        }
    }

    @Test func unterminatedQuoteAndTextAfterAClosingQuote() throws {
        try withTemporaryDirectory { dir in
            let open = try writeFile("a,y\n1,0\n\"2,1\n3,0\n", named: "open.csv", in: dir)
            expectDataError(.malformedQuoting, file: open, row: 3, column: "a", mentioning: ["not closed"]) {
                _ = try CSVLoader.load(open, options: CSVOptions(labelColumn: "y"))
            }
            let trailing = try writeFile("a,y\n\"1\"2,0\n", named: "after.csv", in: dir)
            expectDataError(.malformedQuoting, file: trailing, row: 2, column: "a") {
                _ = try CSVLoader.load(trailing, options: CSVOptions(labelColumn: "y"))
            }
        }
    }

    @Test func duplicateHeaderNames() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("a,b,a,y\n1,2,3,0\n", named: "dup.csv", in: dir)
            expectDataError(.duplicateColumn, file: url, row: 1, column: "a", mentioning: ["columns 1 and 3"]) {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y"))
            }
        }
    }

    @Test func emptyFilesAndHeaderOnlyFiles() throws {
        try withTemporaryDirectory { dir in
            let empty = try writeFile("", named: "empty.csv", in: dir)
            expectDataError(.emptyFile, file: empty) {
                _ = try CSVLoader.load(empty, options: CSVOptions(labelColumn: "y"))
            }
            let headerOnly = try writeFile("a,y\n", named: "header.csv", in: dir)
            expectDataError(.emptyFile, file: headerOnly, mentioning: ["no data rows"]) {
                _ = try CSVLoader.load(headerOnly, options: CSVOptions(labelColumn: "y"))
            }
            let labelOnly = try writeFile("y\n1\n", named: "labelonly.csv", in: dir)
            expectDataError(.invalidArgument, file: labelOnly, mentioning: ["no feature columns"]) {
                _ = try CSVLoader.load(labelOnly, options: CSVOptions(labelColumn: "y"))
            }
        }
    }

    @Test func missingFileIsAnIOFailureNamingThePath() throws {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("nowhere.csv")
            expectDataError(.ioFailure, file: url, mentioning: ["cannot open"]) {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y"))
            }
        }
    }

    @Test func classLabelsThatAreNotClassIndices() throws {
        try withTemporaryDirectory { dir in
            let url = try writeFile("a,y\n1,0\n2,5000000\n", named: "big.csv", in: dir)
            expectDataError(.invalidLabel, file: url, column: "y", mentioning: ["regression"]) {
                _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y"))
            }
            // Whole numbers to Double that no Int holds (found by the csv fuzz target): refused, not a trap.
            for (name, label) in [
                ("huge", "84444444444444444444444444444444444444444444444"), ("exp", "1e300"), ("inf", "inf"),
            ] {
                let url = try writeFile("a,y\n1,0\n2,\(label)\n", named: "\(name).csv", in: dir)
                expectDataError(.invalidLabel, file: url, column: "y", mentioning: ["too large for a class index"]) {
                    _ = try CSVLoader.load(url, options: CSVOptions(labelColumn: "y"))
                }
            }
        }
    }
}

@Suite struct CSVNumberParsing {
    /// The fast decimal path must return exactly the float `strtof` returns, for every input it
    /// accepts; everything else must be left to `strtof`.
    @Test func fastPathAgreesWithStrtofBitForBit() {
        var rng = TesseraRandom(seed: 99)
        var accepted = 0
        let digits = Array("0123456789")
        func randomDigits(_ maxCount: Int) -> String {
            String((0..<rng.nextInt(below: maxCount + 1)).map { _ in digits[rng.nextInt(below: 10)] })
        }
        for _ in 0..<40_000 {
            var text = ["", "-", "+"][rng.nextInt(below: 3)]
            text += randomDigits(9)
            if rng.nextInt(below: 3) > 0 { text += "." + randomDigits(9) }
            if rng.nextInt(below: 4) == 0 {
                text += ["e", "E"][rng.nextInt(below: 2)] + ["", "-", "+"][rng.nextInt(below: 3)] + randomDigits(3)
            }
            var bytes = Array(text.utf8)
            guard !bytes.isEmpty else { continue }
            let fast = bytes.withUnsafeMutableBufferPointer {
                CSVParser.fastDecimal(UnsafePointer($0.baseAddress!), count: $0.count)
            }
            guard let fast else { continue }
            accepted += 1
            var stop: UnsafeMutablePointer<CChar>? = nil
            let reference = text.withCString { start -> (Float, Int) in
                let value = strtof(start, &stop)
                return (value, stop! - UnsafeMutablePointer(mutating: start))
            }
            #expect(reference.1 == bytes.count, "strtof does not take all of \"\(text)\" but the fast path did")
            #expect(fast.bitPattern == reference.0.bitPattern, "\"\(text)\": fast \(fast) vs strtof \(reference.0)")
            bytes.removeAll()
        }
        #expect(accepted > 10_000, "the fast path should cover typical decimals (\(accepted))")
    }
}
