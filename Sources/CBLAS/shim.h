// OpenBLAS's CBLAS interface (Debian: libopenblas-dev). Only TesseraTensor's BLAS wrapper
// imports this module.
#ifndef TESSERA_CBLAS_SHIM_H
#define TESSERA_CBLAS_SHIM_H
#include <cblas.h>
#endif
