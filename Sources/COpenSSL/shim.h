// OpenSSL libcrypto (Debian: libssl-dev), used for the AES-128-CTR mask PRG only.
// Only TesseraCrypto imports this module.
#ifndef TESSERA_COPENSSL_SHIM_H
#define TESSERA_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/crypto.h>
#endif
