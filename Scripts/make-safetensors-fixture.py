#!/usr/bin/env python3
"""Writes the safetensors fixtures that pin Tessera's reader and writer to the reference.

Regenerate (from the package root):

    pip install safetensors numpy && python3 Scripts/make-safetensors-fixture.py

Every file is produced by Hugging Face's own `safetensors` library, so the Swift tests
compare Tessera against the reference implementation rather than against itself:

- `reference.safetensors`: five Float32 tensors named like a PyTorch `nn.Sequential`
  (`0.weight`, `0.bias`, `2.weight`, `2.bias`, `scale`) and two metadata entries. The Swift
  writer must reproduce this file byte for byte.
- `edge-shapes.safetensors`: zero-element tensors (`[0]`, `[2, 0]`) and a rank-0 scalar,
  without metadata. Also reproduced byte for byte.
- `escapes.safetensors`: names and a metadata entry that need JSON escaping (quote,
  backslash, control characters, DEL, `/`, non-ASCII), which pins the reference's string
  escaping and its byte-wise name order. Also reproduced byte for byte.
- `mixed-dtypes.safetensors`: F64, F32, BF16 and F16 tensors, which Tessera reads by
  converting to Float32. It also shows the reference's tensor order (by descending dtype
  alignment, then by name).
- `int64.safetensors`: an I64 tensor beside an F32 one, the shape of a PyTorch BatchNorm
  `num_batches_tracked` buffer, which Tessera must refuse with `unsupportedDType`.

Why the retry loop: the reference keeps `__metadata__` in a Rust `HashMap` with a random
seed, so a file with two or more metadata keys lists them in a different order from run to
run. Tessera writes metadata keys in byte-wise sorted order, which is one of the orders the
reference produces; the loop keeps writing until the reference happens to produce that one,
so the committed fixture is genuine reference output and the Swift test can demand equal
bytes. With zero or one metadata key the reference is deterministic and no retry happens.
"""

import json
import os
import struct
import sys

import numpy as np
import safetensors
from safetensors import TensorSpec, serialize_file
from safetensors.numpy import save_file

FIXTURES = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "TesseraTensorTests", "Fixtures"
)


def header_of(path):
    """Returns the raw header text and the parsed header of a safetensors file."""
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        raw = f.read(length).decode("utf-8")
    return raw, json.loads(raw)


def report(path, tensors):
    raw, _ = header_of(path)
    print(f"wrote {os.path.relpath(path)} ({os.path.getsize(path)} bytes)")
    print(f"  header ({len(raw.encode('utf-8'))} bytes): {raw!r}")
    for name, array in tensors.items():
        print(f"  {name!r} {array.dtype} {list(array.shape)}: {array.reshape(-1).tolist()}")


def write_reference():
    f32 = np.float32
    tensors = {
        "0.weight": np.array(
            [
                [0.5, -1.25, 2.0, -0.0],
                [3.140625, -2.71875, 1.0e-3, -1.0e3],
                [1.0e-40, -7.5, 0.1, 42.0],
            ],
            dtype=f32,
        ),
        "0.bias": np.array([0.25, -0.5, 1.5], dtype=f32),
        "2.weight": np.array([[-3.0, 0.125, 6.5], [1.0e20, -1.0e-20, 0.2]], dtype=f32),
        "2.bias": np.array([-0.75, 0.3], dtype=f32),
        "scale": np.array([-9.0], dtype=f32),
    }
    metadata = {"format": "pt", "tessera": "fixture"}
    path = os.path.join(FIXTURES, "reference.safetensors")
    for attempt in range(1, 201):
        save_file(tensors, path, metadata=metadata)
        _, header = header_of(path)
        # json.loads keeps the file's key order.
        if list(header["__metadata__"]) == sorted(metadata, key=lambda k: k.encode("utf-8")):
            break
    else:
        sys.exit("the reference never wrote the metadata keys in sorted order in 200 tries")
    report(path, tensors)
    print(f"  metadata {metadata} (sorted key order after {attempt} write(s))")


def write_edge_shapes():
    tensors = {
        "empty": np.zeros((0,), dtype=np.float32),
        "matrix.empty": np.zeros((2, 0), dtype=np.float32),
        "scalar": np.array(3.25, dtype=np.float32),
        "vector": np.array([1.0, -2.0, 3.0], dtype=np.float32),
    }
    path = os.path.join(FIXTURES, "edge-shapes.safetensors")
    save_file(tensors, path)
    report(path, tensors)


def write_escapes():
    names = [
        'q"uote', "back\\slash", "nl\nx", "ctl\x01\x1f", "del\x7f", "\u00e9", "\U0001F600",
        "sl/ash", "tab\t\b\f\r", "Z", "a", "",
    ]
    tensors = {name: np.array([i + 1], dtype=np.float32) for i, name in enumerate(names)}
    path = os.path.join(FIXTURES, "escapes.safetensors")
    # One metadata key, so the reference's output is deterministic.
    save_file(tensors, path, metadata={'k"\n\x02': "v\\/\u00e9"})
    report(path, tensors)


def write_mixed_dtypes():
    # Every value is exact in its source dtype; the F64 ones also show rounding to Float32
    # (0.1) and overflow to infinity (1e300).
    half = np.array(
        [0.5, -2.0, 65504.0, 2.0**-14, 2.0**-24, np.inf, -0.0, 0.333251953125], dtype=np.float16
    )
    brain_f32 = np.array([[1.0, -3.5], [0.15625, 3.3895313892515355e38]], dtype=np.float32)
    brain_bits = (brain_f32.view(np.uint32) >> 16).astype(np.uint16)
    assert np.array_equal((brain_bits.astype(np.uint32) << 16).view(np.float32), brain_f32)
    double = np.array([0.1, -1.0e300, 2.5], dtype=np.float64)
    single = np.array([7.0, -8.0], dtype=np.float32)
    arrays = {"half": half, "brain": brain_bits, "double": double, "single": single}
    dtypes = {"half": "float16", "brain": "bfloat16", "double": "float64", "single": "float32"}
    # numpy has no bfloat16, so this file goes through the reference's raw serializer with
    # explicit dtypes (what `save_file` itself calls).
    specs = {
        name: TensorSpec(
            dtype=dtypes[name],
            shape=array.shape,
            data_ptr=array.ctypes.data,
            data_len=array.nbytes,
        )
        for name, array in arrays.items()
    }
    path = os.path.join(FIXTURES, "mixed-dtypes.safetensors")
    serialize_file(specs, path, metadata={"format": "np"})
    report(path, {"half": half, "brain (as float32)": brain_f32, "double": double, "single": single})


def write_int64():
    tensors = {
        "bn.num_batches_tracked": np.array(12, dtype=np.int64),
        "bn.weight": np.array([1.0, 2.0], dtype=np.float32),
    }
    path = os.path.join(FIXTURES, "int64.safetensors")
    save_file(tensors, path)
    report(path, tensors)


if __name__ == "__main__":
    print(f"safetensors {safetensors.__version__}, numpy {np.__version__}")
    os.makedirs(FIXTURES, exist_ok=True)
    write_reference()
    write_edge_shapes()
    write_escapes()
    write_mixed_dtypes()
    write_int64()
