import TesseraSupport
import Testing

@testable import TesseraCrypto

@Suite("Mask PRG")
struct MaskPRGTests {
    static func seed(_ value: UInt64) -> SecretBytes {
        var generator = SplitMix64(seed: value)
        return SecretBytes((0..<32).map { _ in UInt8(truncatingIfNeeded: generator.next()) })
    }

    static func randomWords(_ count: Int, seed: UInt64) -> [UInt32] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { _ in UInt32(truncatingIfNeeded: generator.next()) }
    }

    static func stream(_ prg: MaskPRG, count: Int, offset: Int = 0) throws -> [UInt32] {
        var words = [UInt32](repeating: 0, count: count)
        try words.withUnsafeMutableBufferPointer { try prg.fill($0, startingAt: offset) }
        return words
    }

    static let lengths = [1, 3, 4, 5, 4095, 4096, 4097, 100_003]

    @Test("add(into:) equals fill followed by a wrapping add", arguments: lengths)
    func addMatchesFill(length: Int) throws {
        let prg = try MaskPRG(seed: Self.seed(1))
        let mask = try Self.stream(prg, count: length)
        let original = Self.randomWords(length, seed: UInt64(length))
        var accumulator = original
        try accumulator.withUnsafeMutableBufferPointer { try prg.add(into: $0) }
        #expect(accumulator == zip(original, mask).map { $0 &+ $1 })
    }

    @Test("subtract(from:) undoes add(into:) exactly", arguments: lengths)
    func addThenSubtract(length: Int) throws {
        let prg = try MaskPRG(seed: Self.seed(2))
        let original = Self.randomWords(length, seed: 99)
        var accumulator = original
        try accumulator.withUnsafeMutableBufferPointer { try prg.add(into: $0) }
        #expect(accumulator != original)
        try accumulator.withUnsafeMutableBufferPointer { try prg.subtract(from: $0) }
        #expect(accumulator == original)
    }

    @Test("same seed gives the same stream on every call; different seeds differ")
    func determinism() throws {
        let a = try Self.stream(try MaskPRG(seed: Self.seed(3)), count: 1000)
        let b = try Self.stream(try MaskPRG(seed: Self.seed(3)), count: 1000)
        let prg = try MaskPRG(seed: Self.seed(3))
        #expect(a == b)
        #expect(try Self.stream(prg, count: 1000) == (try Self.stream(prg, count: 1000)))
        let c = try Self.stream(try MaskPRG(seed: Self.seed(4)), count: 1000)
        #expect(a != c)
        // Not a constant or trivially repeating stream.
        #expect(Set(a).count > 990)
        // A prefix of a longer stream is the shorter stream.
        #expect(Array(try Self.stream(prg, count: 5000).prefix(1000)) == a)
    }

    @Test(
        "a stream started at a word offset is the matching slice of the full stream",
        arguments: [1, 3, 4, 5, 4097, 9999])
    func offsets(offset: Int) throws {
        let prg = try MaskPRG(seed: Self.seed(5))
        let full = try Self.stream(prg, count: offset + 50)
        #expect(try Self.stream(prg, count: 50, offset: offset) == Array(full[offset...]))
        var accumulator = [UInt32](repeating: 7, count: 50)
        try accumulator.withUnsafeMutableBufferPointer { try prg.add(into: $0, startingAt: offset) }
        #expect(accumulator == full[offset...].map { $0 &+ 7 })
    }

    @Test("the 128-bit counter carries across all bytes when started at an offset")
    func counterCarry() throws {
        // IV = ff…ff: the second block's counter wraps to 00…00.
        let seed = SecretBytes([UInt8](repeating: 0x11, count: 16) + [UInt8](repeating: 0xff, count: 16))
        let prg = try MaskPRG(seed: seed)
        let full = try Self.stream(prg, count: 12)
        #expect(try Self.stream(prg, count: 8, offset: 4) == Array(full[4...]))
        #expect(try Self.stream(prg, count: 4, offset: 8) == Array(full[8...]))
    }

    @Test("many seeds at once equal the masks applied one by one")
    func multipleSeeds() throws {
        let seeds = (10..<15).map { Self.seed(UInt64($0)) }
        let signs: [MaskPRG.Sign] = [.plus, .minus, .plus, .plus, .minus]
        let original = Self.randomWords(10_001, seed: 7)
        var expected = original
        for (seed, sign) in zip(seeds, signs) {
            let prg = try MaskPRG(seed: seed)
            try expected.withUnsafeMutableBufferPointer {
                sign == .plus ? try prg.add(into: $0) : try prg.subtract(from: $0)
            }
        }
        var combined = original
        try combined.withUnsafeMutableBufferPointer { try MaskPRG.add(seeds: seeds, signs: signs, into: $0) }
        #expect(combined == expected)
        // Pairwise masks with opposite signs cancel exactly.
        var cancelled = original
        try cancelled.withUnsafeMutableBufferPointer {
            try MaskPRG.add(seeds: [seeds[0], seeds[0]], signs: [.plus, .minus], into: $0)
        }
        #expect(cancelled == original)
    }

    @Test("bad seeds, mismatched signs and negative offsets are rejected")
    func invalidInput() throws {
        #expect(thrownCode { _ = try MaskPRG(seed: SecretBytes(count: 16)) } == .invalidLength)
        var words = [UInt32](repeating: 0, count: 4)
        #expect(
            thrownCode {
                try words.withUnsafeMutableBufferPointer { try MaskPRG.add(seeds: [Self.seed(1)], signs: [], into: $0) }
            } == .invalidArgument)
        let prg = try MaskPRG(seed: Self.seed(1))
        #expect(
            thrownCode { try words.withUnsafeMutableBufferPointer { try prg.add(into: $0, startingAt: -1) } }
                == .invalidArgument)
        // Empty buffers are a no-op.
        var empty = [UInt32]()
        try empty.withUnsafeMutableBufferPointer { try prg.add(into: $0) }
        #expect(empty.isEmpty)
    }
}
