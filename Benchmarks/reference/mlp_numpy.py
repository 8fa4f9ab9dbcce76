#!/usr/bin/env python3
"""numpy reference for the MLP benchmark of `make bench`.

Does the same work as Tessera's benchmark: an MLP 784-200-200-10 with ReLU, softmax
cross-entropy, plain SGD, batch 64, float32, the same number of steps on one fixed random
batch; the input gradient of the first layer is not computed (nobody needs it). It is
written the way a careful numpy user would write it: float32 throughout, in-place updates,
no Python loops over elements.

Prints `samples_per_s <value>` (best of three timed runs).
"""
import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    sizes = [784, 200, 200, 10]
    weights = [
        (rng.standard_normal((o, i), dtype=np.float32) * np.float32(np.sqrt(2.0 / i)))
        for i, o in zip(sizes[:-1], sizes[1:])
    ]
    biases = [np.zeros(o, dtype=np.float32) for o in sizes[1:]]
    x = rng.random((args.batch, 784), dtype=np.float32)
    y = np.arange(args.batch) % 10
    lr = np.float32(0.01)
    rows = np.arange(args.batch)

    def step() -> None:
        # forward
        a0 = x
        z1 = a0 @ weights[0].T + biases[0]
        a1 = np.maximum(z1, 0)
        z2 = a1 @ weights[1].T + biases[1]
        a2 = np.maximum(z2, 0)
        z3 = a2 @ weights[2].T + biases[2]
        # fused softmax cross-entropy gradient
        z3 -= z3.max(axis=1, keepdims=True)
        e = np.exp(z3)
        e /= e.sum(axis=1, keepdims=True)
        e[rows, y] -= 1
        e /= np.float32(args.batch)
        # backward
        g3w = e.T @ a2
        g3b = e.sum(axis=0)
        d2 = e @ weights[2]
        d2 *= z2 > 0
        g2w = d2.T @ a1
        g2b = d2.sum(axis=0)
        d1 = d2 @ weights[1]
        d1 *= z1 > 0
        g1w = d1.T @ a0
        g1b = d1.sum(axis=0)
        # SGD
        for w, g in ((weights[0], g1w), (weights[1], g2w), (weights[2], g3w)):
            w -= lr * g
        for b, g in ((biases[0], g1b), (biases[1], g2b), (biases[2], g3b)):
            b -= lr * g

    for _ in range(10):
        step()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        best = min(best, time.perf_counter() - start)
    print(f"samples_per_s {args.steps * args.batch / best:.1f}")


if __name__ == "__main__":
    main()
