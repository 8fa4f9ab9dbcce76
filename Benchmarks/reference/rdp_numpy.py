#!/usr/bin/env python3
"""numpy reference for the accountant benchmark of `make bench` (`dp_accountant_ms`).

Computes what Tessera's PrivacyAccountant computes: the RDP of the Poisson-subsampled Gaussian
(Mironov, Talwar, Zhang 2019) at every order of the standard grid (1.1 ... 10.9, 12 ... 63, 128,
256), times the number of rounds, converted to (epsilon, delta) as Opacus does (Balle et al. 2020).
It is written the way a careful numpy user would write it: every formula vectorised over the
orders (and over the series' terms), no Python loop over orders or terms.

- Integer orders: log-sum-exp of the binomial expansion, one matrix of orders x terms.
- Fractional orders: the two series of Mironov et al. 2019, each cut after the first term where
  both are below e^-30 (as Tessera and TF Privacy do), with the positive and negative terms of
  the generalised binomial coefficients summed apart.

Prints `epsilon <value>`, `order <value>` and `ms <median milliseconds of the timed repeats>`.
"""
import argparse
import math
import statistics
import time

import numpy as np

try:
    from scipy.special import log_ndtr

    def log_erfc(x):
        return math.log(2.0) + log_ndtr(-x * math.sqrt(2.0))

except ImportError:  # numpy alone: erfc from the standard library, with the asymptotic tail
    _erfc = np.frompyfunc(math.erfc, 1, 1)

    def log_erfc(x):
        x = np.asarray(x, dtype=np.float64)
        tail = x > 25
        safe = np.where(tail, 0.0, x)
        direct = np.log(_erfc(safe).astype(np.float64))
        big = np.where(tail, x, 30.0)
        inv = 1.0 / (big * big)
        series = -0.5 * inv + 0.625 * inv**2 - 37.0 / 24.0 * inv**3 + 353.0 / 64.0 * inv**4
        asymptotic = -0.5 * math.log(math.pi) - np.log(big) - big * big + series
        return np.where(tail, asymptotic, direct)


def standard_orders():
    return np.concatenate([np.arange(11, 110) / 10.0, np.arange(12, 64, dtype=np.float64), [128.0, 256.0]])


def logsumexp(a, axis):
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):  # an empty sum is log 0 = -inf, on purpose
        return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def rdp_integer(q, sigma, alphas):
    top = int(alphas.max())
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, top + 1, dtype=np.float64)))])
    a = alphas.astype(np.int64)[:, None]
    i = np.arange(top + 1)[None, :]
    valid = i <= a
    ai = np.where(valid, a - i, 0)
    log_binom = log_fact[a] - log_fact[i] - log_fact[ai]
    fi = i.astype(np.float64)
    terms = log_binom + fi * math.log(q) + (a - fi) * math.log1p(-q) + (fi * fi - fi) / (2 * sigma**2)
    terms = np.where(valid, terms, -np.inf)
    return logsumexp(terms, axis=1) / (alphas - 1)


def log_signed_sum(terms, positive):
    """log(sum of e^terms where positive - sum where not), per row."""
    pos = logsumexp(np.where(positive, terms, -np.inf), axis=1)
    neg = logsumexp(np.where(positive, -np.inf, terms), axis=1)
    with np.errstate(invalid="ignore"):  # -inf - -inf only where both sums are empty
        return pos + np.log1p(-np.exp(neg - pos))


def rdp_fractional(q, sigma, alphas, terms=256):
    while True:
        a = alphas[:, None]
        i = np.arange(terms, dtype=np.float64)[None, :]
        factors = np.log(np.abs(a - i[:, :-1])) - np.log(i[:, :-1] + 1)
        log_abs_binom = np.concatenate([np.zeros_like(alphas)[:, None], np.cumsum(factors, axis=1)], axis=1)
        positive = (np.maximum(0.0, i - np.ceil(a)) % 2) == 0
        z0 = sigma**2 * math.log(1 / q - 1) + 0.5
        j = a - i
        log_s0 = (log_abs_binom + i * math.log(q) + j * math.log1p(-q) + (i * i - i) / (2 * sigma**2)
                  + math.log(0.5) + log_erfc((i - z0) / (math.sqrt(2) * sigma)))
        log_s1 = (log_abs_binom + j * math.log(q) + i * math.log1p(-q) + (j * j - j) / (2 * sigma**2)
                  + math.log(0.5) + log_erfc((z0 - j) / (math.sqrt(2) * sigma)))
        small = np.maximum(log_s0, log_s1) < -30
        if small.any(axis=1).all():
            break
        terms *= 2
    last = np.argmax(small, axis=1)[:, None]
    keep = np.arange(terms)[None, :] <= last
    log_a0 = log_signed_sum(np.where(keep, log_s0, -np.inf), positive)
    log_a1 = log_signed_sum(np.where(keep, log_s1, -np.inf), positive)
    return np.logaddexp(log_a0, log_a1) / (alphas - 1)


def epsilon(q, sigma, rounds, delta, orders):
    integer = orders == np.floor(orders)
    rdp = np.empty_like(orders)
    rdp[integer] = rdp_integer(q, sigma, orders[integer])
    rdp[~integer] = rdp_fractional(q, sigma, orders[~integer])
    rdp *= rounds
    eps = rdp - (math.log(delta) + np.log(orders)) / (orders - 1) + np.log((orders - 1) / orders)
    best = int(np.nanargmin(eps))
    return max(0.0, float(eps[best])), float(orders[best])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sampling-rate", type=float, default=0.01)
    parser.add_argument("--noise-multiplier", type=float, default=1.1)
    parser.add_argument("--rounds", type=int, default=10_000)
    parser.add_argument("--delta", type=float, default=1e-5)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    orders = standard_orders()
    result = epsilon(args.sampling_rate, args.noise_multiplier, args.rounds, args.delta, orders)
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        epsilon(args.sampling_rate, args.noise_multiplier, args.rounds, args.delta, orders)
        times.append((time.perf_counter() - start) * 1000)
    print(f"epsilon {result[0]!r}")
    print(f"order {result[1]!r}")
    print(f"ms {statistics.median(times)!r}")


if __name__ == "__main__":
    main()
