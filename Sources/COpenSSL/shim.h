// OpenSSL libcrypto (Debian: libssl-dev): the AES-128-CTR mask PRG and SHA-256.
// Only TesseraCrypto imports this module.
#ifndef TESSERA_COPENSSL_SHIM_H
#define TESSERA_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#endif
