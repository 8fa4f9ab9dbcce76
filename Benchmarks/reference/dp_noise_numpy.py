#!/usr/bin/env python3
"""numpy reference for `dp_noise_client_ms` of `make bench`.

Does the same client-side work as Tessera's distributed-DP encode of a clipped update: scale by
gamma and apply random signs (zero-padded to a power of two), a fast Walsh-Hadamard transform
normalised by 1/sqrt(n), conditional stochastic rounding until the squared norm is within the
bound, the adaptive-clipping bit word, Skellam noise as the difference of two numpy Poisson
draws per word, and reduction mod 2^32. Written the way a careful numpy user would: one
vectorised pass per transform level, in-place updates, no Python loops over elements.

Prints `encode_ms <value>`: one warm-up encode, then one timed encode (Tessera interleaves
its own runs with invocations of this script and takes medians).
"""
import argparse
import time

import numpy as np


def fwht(x: np.ndarray) -> None:
    """Unnormalised Walsh-Hadamard transform of x (length a power of two), in place."""
    n = x.shape[0]
    span = 1
    while span < n:
        pairs = x.reshape(-1, 2, span)
        first = pairs[:, 0, :].copy()
        second = pairs[:, 1, :]
        pairs[:, 0, :] += second
        second *= -1.0
        second += first
        span *= 2


def encode(update, scale, bound, bit_word, mu, rng):
    d = update.shape[0]
    n = 1 << (d - 1).bit_length()
    x = np.zeros(n)
    x[:d] = update
    x *= scale / np.sqrt(n)
    signs = rng.integers(0, 2, size=n, dtype=np.int8)
    x[signs == 1] *= -1.0
    fwht(x)
    for _ in range(64):
        floor = np.floor(x)
        rounded = (floor + (rng.random(n) < (x - floor))).astype(np.int64)
        if int(np.dot(rounded, rounded)) <= bound:
            break
    else:
        raise RuntimeError("conditional rounding did not meet the bound")
    words = np.empty(n + 1, dtype=np.int64)
    words[:n] = rounded
    words[n] = bit_word
    words += rng.poisson(mu, n + 1)
    words -= rng.poisson(mu, n + 1)
    return (words & 0xFFFFFFFF).astype(np.uint32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dimension", type=int, default=1_000_000)
    parser.add_argument("--scale", type=float, required=True)
    parser.add_argument("--bound", type=float, required=True)
    parser.add_argument("--mu", type=float, required=True)
    parser.add_argument("--bit-scale", type=int, default=0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    update = rng.uniform(-1.0, 1.0, args.dimension).astype(np.float32)
    update /= np.float32(np.linalg.norm(update.astype(np.float64)) * (1 + 1e-6))
    bound = int(args.bound)
    bit_word = args.bit_scale // 2

    encode(update, args.scale, bound, bit_word, args.mu, rng)
    start = time.perf_counter()
    words = encode(update, args.scale, bound, bit_word, args.mu, rng)
    elapsed = time.perf_counter() - start
    assert words.shape[0] == (1 << (args.dimension - 1).bit_length()) + (1 if args.bit_scale else 0)
    print(f"encode_ms {elapsed * 1e3:.3f}")


if __name__ == "__main__":
    main()
