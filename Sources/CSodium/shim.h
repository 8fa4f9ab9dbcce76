// libsodium (Debian: libsodium-dev). Only TesseraCrypto imports this module.
#ifndef TESSERA_CSODIUM_SHIM_H
#define TESSERA_CSODIUM_SHIM_H
#include <sodium.h>
#endif
