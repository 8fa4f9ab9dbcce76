import TesseraSupport
import Testing

@Suite struct HexTests {
    @Test func encodesTwoLowercaseDigitsPerByte() {
        #expect(Hex.encode([UInt8]()) == "")
        #expect(Hex.encode([0x00, 0x0F, 0xA0, 0xFF, 0x5c]) == "000fa0ff5c")
        #expect(Hex.encode(0x0A as UInt8) == "0a")
        #expect(Hex.encode(Array(0...255)).count == 512)
    }

    @Test func decodesEitherCaseAndRoundTripsEveryByte() {
        let all = [UInt8](0...255)
        #expect(Hex.decode(Hex.encode(all)) == all)
        #expect(Hex.decode(Hex.encode(all).uppercased()) == all)
        #expect(Hex.decode("DeadBEEF") == [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(Hex.decode("") == [])
    }

    @Test(arguments: ["abc", "0", "zz", "0g", "g0", " 0a", "0x0a", "-1", "ａｂ", "0a\n"])
    func rejectsOddLengthsAndNonDigits(_ text: String) {
        #expect(Hex.decode(text) == nil)
    }

    @Test func digitValuesCoverExactlyTheAsciiHexDigits() {
        let accepted = (0...255).compactMap { byte in Hex.digitValue(UInt8(byte)).map { (byte, $0) } }
        #expect(accepted.count == 22)
        for (byte, value) in accepted {
            #expect(Int(value) == Int(String(UnicodeScalar(UInt8(byte))), radix: 16))
        }
    }
}
