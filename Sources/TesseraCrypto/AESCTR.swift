import COpenSSL

/// One AES-128-CTR keystream position, owning an OpenSSL `EVP_CIPHER_CTX`.
///
/// This is the only place the module talks to libcrypto. The context is created and freed
/// here (OpenSSL cleanses the expanded key schedule when the context is freed), every return
/// code is checked, and no OpenSSL type leaves the type. It is a class so that `deinit` frees
/// the context even when an error is thrown halfway through a mask expansion; it is not
/// `Sendable` and never shared between threads — each expansion creates its own.
///
/// Counter semantics are those of NIST SP 800-38A: the 16-byte IV is the first counter block,
/// incremented as a 128-bit big-endian integer per block (OpenSSL carries past 32 bits).
final class AESCTRStream {
    static let keyByteCount = 16
    static let blockByteCount = 16

    private let context: OpaquePointer

    /// Starts a keystream at `blockOffset` blocks after `iv`.
    init(key: UnsafeRawBufferPointer, iv: UnsafeRawBufferPointer, blockOffset: UInt64 = 0) throws {
        precondition(
            key.count == Self.keyByteCount && iv.count == Self.blockByteCount,
            "AES-128-CTR takes a 16-byte key and a 16-byte IV")
        guard let context = EVP_CIPHER_CTX_new() else {
            throw OpenSSLError.capture("EVP_CIPHER_CTX_new could not allocate an AES-CTR context")
        }
        self.context = context
        guard let cipher = EVP_aes_128_ctr() else {
            throw OpenSSLError.capture("EVP_aes_128_ctr returned no cipher; is the default provider available?")
        }
        // The starting counter block: IV + blockOffset, as a 128-bit big-endian sum.
        var counter = [UInt8](iv)
        if blockOffset != 0 {
            var carry = blockOffset
            for index in stride(from: 15, through: 0, by: -1) where carry != 0 {
                let sum = UInt64(counter[index]) + (carry & 0xff)
                counter[index] = UInt8(truncatingIfNeeded: sum)
                carry = (carry >> 8) + (sum >> 8)
            }
        }
        let status = counter.withUnsafeBufferPointer { ivBytes in
            EVP_EncryptInit_ex(
                context, cipher, nil, key.baseAddress!.assumingMemoryBound(to: UInt8.self), ivBytes.baseAddress!)
        }
        guard status == 1 else {
            throw OpenSSLError.capture("EVP_EncryptInit_ex failed to key AES-128-CTR")
        }
    }

    deinit {
        EVP_CIPHER_CTX_free(context)
    }

    /// Encrypts `count` bytes from `input` into `output` (they may be the same buffer), moving
    /// the keystream forward by `count` bytes. With an all-zero input the output is the raw
    /// keystream.
    @inline(__always)
    func encrypt(_ input: UnsafeRawPointer, into output: UnsafeMutableRawPointer, count: Int) throws {
        precondition(count >= 0 && count <= Int(Int32.max))
        var written: Int32 = 0
        let status = EVP_EncryptUpdate(
            context,
            output.assumingMemoryBound(to: UInt8.self), &written,
            input.assumingMemoryBound(to: UInt8.self), Int32(count)
        )
        guard status == 1, Int(written) == count else {
            throw OpenSSLError.capture("EVP_EncryptUpdate failed while expanding AES-128-CTR")
        }
    }
}

/// Raw AES-128-CTR: encrypts (or, identically, decrypts) `input` under `key` starting at counter
/// block `iv`. Internal: the mask PRG builds on it, and the known-answer tests check it against
/// NIST SP 800-38A.
enum AESCTR {
    static func encrypt(key: [UInt8], iv: [UInt8], _ input: [UInt8]) throws -> [UInt8] {
        guard key.count == AESCTRStream.keyByteCount, iv.count == AESCTRStream.blockByteCount else {
            throw CryptoError(
                code: .invalidLength,
                message: "AES-128-CTR needs a 16-byte key and a 16-byte IV; got \(key.count) and \(iv.count) bytes.")
        }
        let stream = try key.withUnsafeBytes { k in
            try iv.withUnsafeBytes { i in try AESCTRStream(key: k, iv: i) }
        }
        var output = [UInt8](repeating: 0, count: input.count)
        if input.isEmpty { return output }
        try input.withUnsafeBytes { inBytes in
            try output.withUnsafeMutableBytes { outBytes in
                try stream.encrypt(inBytes.baseAddress!, into: outBytes.baseAddress!, count: inBytes.count)
            }
        }
        return output
    }
}

/// Turns OpenSSL's thread-local error queue into a ``CryptoError`` and empties the queue, so a
/// stale entry is never blamed on a later, unrelated call.
enum OpenSSLError {
    static func capture(_ what: String) -> CryptoError {
        var details: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            let end = buffer.firstIndex(of: 0) ?? buffer.count
            details.append(String(decoding: buffer[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        let suffix = details.isEmpty ? "" : " (OpenSSL: \(details.joined(separator: "; ")))"
        return CryptoError(code: .libraryFailure, message: what + suffix)
    }
}
