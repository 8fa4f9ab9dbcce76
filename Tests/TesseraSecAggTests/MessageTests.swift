import PropertyBased
import TesseraCrypto
import Testing

@testable import TesseraSecAgg

@Suite("Wire messages")
struct MessageTests {
    static func keys(_ id: UInt32, signed: Bool) -> AdvertisedKeys {
        AdvertisedKeys(
            participant: id, encryptionKey: [UInt8](repeating: UInt8(id), count: 32),
            maskingKey: [UInt8](repeating: UInt8(id) ^ 0xff, count: 32),
            signature: signed ? [UInt8](repeating: 7, count: 64) : [])
    }

    static let share = ShamirShare(x: 5, values: [1, 2, 3, 4, (1 << 61) - 2])
    static func nonce(_ byte: UInt8) -> [UInt8] {
        [UInt8](repeating: byte, count: SecAggProtocol.commitmentNonceLength)
    }
    static func commitment(owner: UInt32, holder: UInt32) -> ShareCommitment {
        ShareCommitment(
            owner: owner, holder: holder, selfMask: [UInt8](repeating: UInt8(holder), count: 32),
            key: [UInt8](repeating: UInt8(owner), count: 32))
    }

    /// One message of every kind, with non-trivial contents.
    static let samples: [SecAggMessage] = [
        .advertiseKeys(AdvertiseKeysMessage(roundID: 9, sender: 5, keys: keys(5, signed: true))),
        .advertiseKeys(AdvertiseKeysMessage(roundID: 9, sender: 5, keys: keys(5, signed: false))),
        .shareKeys(
            ShareKeysMessage(
                roundID: 9, sender: 5,
                shares: [
                    EncryptedShare(peer: 6, ciphertext: [1, 2, 3]), EncryptedShare(peer: 8, ciphertext: []),
                ])),
        .shareKeys(
            ShareKeysMessage(
                roundID: 9, sender: 5, shares: [EncryptedShare(peer: 6, ciphertext: [1, 2, 3])],
                commitments: [commitment(owner: 5, holder: 5), commitment(owner: 5, holder: 6)],
                commitmentSignature: [UInt8](repeating: 4, count: 64))),
        .maskedInput(MaskedInputMessage(roundID: .max, sender: 5, maskedInput: [0, 1, .max, 0xdead_beef])),
        .consistencySignature(
            ConsistencySignatureMessage(roundID: 9, sender: 5, signature: [UInt8](repeating: 3, count: 64))),
        .unmaskingResponse(
            UnmaskingResponseMessage(
                roundID: 9, sender: 5, selfMaskShares: [PeerShare(peer: 6, share: share, nonce: nonce(1))],
                keyShares: [
                    PeerShare(peer: 7, share: share, nonce: nonce(2)),
                    PeerShare(peer: 9, share: ShamirShare(x: 5, values: []), nonce: nonce(3)),
                ])
        ),
        .shareKeysRequest(
            ShareKeysRequest(roundID: 9, recipient: 5, neighbours: [keys(6, signed: false), keys(7, signed: true)])),
        .maskedInputRequest(
            MaskedInputRequest(roundID: 9, recipient: 5, shares: [EncryptedShare(peer: 6, ciphertext: [9, 9])])),
        .maskedInputRequest(
            MaskedInputRequest(
                roundID: 9, recipient: 5, shares: [EncryptedShare(peer: 6, ciphertext: [9, 9])],
                commitments: [commitment(owner: 6, holder: 5)])),
        .consistencyCheckRequest(ConsistencyCheckRequest(roundID: 9, recipient: 5, survivors: [1, 5, 6, 100])),
        .unmaskingRequest(
            UnmaskingRequest(
                roundID: 9, recipient: 5, survivors: [5, 6], dropped: [7],
                signatures: [ParticipantSignature(participant: 6, signature: [UInt8](repeating: 1, count: 64))])),
        .unmaskingRequest(UnmaskingRequest(roundID: 0, recipient: 1, survivors: [], dropped: [])),
    ]

    @Test("Every message kind round-trips and keeps its header fields", arguments: samples)
    func roundTrip(message: SecAggMessage) throws {
        let bytes = message.encoded()
        let decoded = try SecAggMessage.decode(bytes)
        #expect(decoded == message)
        #expect(decoded.encoded() == bytes)
        #expect(Array(bytes[0..<4]) == Array("TSAG".utf8) && bytes[4] == SecAggMessage.version)
        #expect(bytes[6] == message.stage.rawValue)
        #expect(
            decoded.roundID == message.roundID && decoded.sender == message.sender
                && decoded.recipient == message.recipient)
    }

    @Test("Every truncation is rejected as truncated", arguments: samples)
    func truncation(message: SecAggMessage) {
        let bytes = message.encoded()
        for length in 0..<bytes.count {
            let error = #expect(throws: SecAggError.self) { _ = try SecAggMessage.decode(Array(bytes.prefix(length))) }
            #expect(error?.code == .truncatedMessage, "prefix of \(length) bytes: \(String(describing: error))")
        }
    }

    @Test("Oversized input (trailing bytes) is rejected", arguments: samples)
    func trailing(message: SecAggMessage) {
        let error = #expect(throws: SecAggError.self) { _ = try SecAggMessage.decode(message.encoded() + [0]) }
        #expect(error?.code == .trailingBytes)
    }

    @Test("Header corruption is rejected with a precise code")
    func header() throws {
        let bytes = SecAggMessage.maskedInput(MaskedInputMessage(roundID: 1, sender: 2, maskedInput: [1, 2])).encoded()
        func code(_ mutate: (inout [UInt8]) -> Void) -> SecAggError.Code? {
            var copy = bytes
            mutate(&copy)
            return (#expect(throws: SecAggError.self) { _ = try SecAggMessage.decode(copy) })?.code
        }
        #expect(code { $0[0] = UInt8(ascii: "X") } == .malformedMessage)  // magic
        #expect(code { $0[4] = 1 } == .unsupportedVersion)  // version 1 had no graph seed
        #expect(code { $0[4] = 2 } == .unsupportedVersion)  // version 2 had no share commitments
        #expect(code { $0[5] = 0x7f } == .malformedMessage)  // unknown kind
        #expect(code { $0[6] = SecAggStage.unmasking.rawValue } == .malformedMessage)  // stage contradicts kind
        #expect(code { $0[7] = 1 } == .malformedMessage)  // reserved byte
        #expect(
            code {
                $0[16] = 0; $0[17] = 0; $0[18] = 0; $0[19] = 0
            } == .malformedMessage)  // client message from id 0
        #expect(code { $0[20] = 1 } == .malformedMessage)  // client message with a recipient
        // A huge element count is refused before anything is allocated.
        #expect(
            code {
                $0[24] = 0xff; $0[25] = 0xff; $0[26] = 0xff; $0[27] = 0xff
            } == .truncatedMessage)
    }

    @Test("Id lists must be sorted sets and signatures at most 64 bytes")
    func canonicalLists() {
        let unsorted = SecAggMessage.consistencyCheckRequest(
            ConsistencyCheckRequest(roundID: 1, recipient: 2, survivors: [3, 1]))
        let error = #expect(throws: SecAggError.self) { _ = try SecAggMessage.decode(unsorted.encoded()) }
        #expect(error?.code == .malformedMessage)
        let long = SecAggMessage.consistencySignature(
            ConsistencySignatureMessage(roundID: 1, sender: 2, signature: [UInt8](repeating: 0, count: 65)))
        #expect(
            (#expect(throws: SecAggError.self) { _ = try SecAggMessage.decode(long.encoded()) })?.code
                == .malformedMessage)
        let badShare = SecAggMessage.unmaskingResponse(
            UnmaskingResponseMessage(
                roundID: 1, sender: 2,
                selfMaskShares: [PeerShare(peer: 3, share: ShamirShare(x: 0, values: []), nonce: Self.nonce(0))],
                keyShares: []))
        #expect(
            (#expect(throws: SecAggError.self) { _ = try SecAggMessage.decode(badShare.encoded()) })?.code
                == .malformedMessage)
    }

    @Test("The version-3 encoding is pinned byte for byte")
    func golden() {
        let bytes = SecAggMessage.consistencyCheckRequest(
            ConsistencyCheckRequest(roundID: 0x0102_0304_0506_0708, recipient: 0x0a0b_0c0d, survivors: [1, 0x100])
        ).encoded()
        #expect(
            bytes == [
                0x54, 0x53, 0x41, 0x47, 0x03, 0x83, 0x04, 0x00,  // "TSAG", v3, kind, stage 4, reserved
                0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // round id, little-endian
                0x00, 0x00, 0x00, 0x00, 0x0d, 0x0c, 0x0b, 0x0a,  // sender 0 (server), recipient
                0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,  // ids [1, 256]
            ])
    }

    @Test("Random bytes never crash the decoder: they fail with a typed error or re-encode identically")
    func garbage() async {
        await propertyCheck(count: 300, input: Gen.uint8().array(of: 0...120), Gen.int(in: 0...10)) {
            noise, sampleIndex in
            // Half the cases: a valid header followed by noise, to get past the magic.
            let base = Self.samples[sampleIndex].encoded()
            for candidate in [noise, Array(base.prefix(24)) + noise] {
                do {
                    let decoded = try SecAggMessage.decode(candidate)
                    #expect(decoded.encoded() == candidate)
                } catch {
                    #expect(error is SecAggError)
                }
            }
        }
    }
}
