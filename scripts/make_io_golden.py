#!/usr/bin/python3
"""Write the tiny golden files of test/io-golden/ that test/io.test.ts reads.

    /usr/bin/python3 scripts/make_io_golden.py [--out test/io-golden]

Every file is written by NumPy / PyTorch (Debian python3-numpy, python3-torch), or for
safetensors by hand following the format spec (the `safetensors` package is not installed).
expected.json holds, per file and key, the dtype, shape and the values as float32 (as JSON
numbers, which round-trip exactly), or the error a reader must raise.
"""

import argparse
import collections
import json
import os
import struct

import numpy as np

try:
    import torch
except ImportError:  # the npy/npz/safetensors goldens do not need torch
    torch = None


def values(a):
    return [float(x) for x in np.asarray(a, dtype=np.float32).reshape(-1)]


def record(arr, dtype):
    return {"dtype": dtype, "shape": list(arr.shape), "values": values(arr)}


NPY_DTYPES = [("<f4", "F32"), ("<f8", "F64"), ("<f2", "F16"), ("<i8", "I64"), ("<i4", "I32"),
              ("<i2", "I16"), ("|i1", "I8"), ("|u1", "U8"), ("|b1", "BOOL")]


def make_npy(out, expected):
    rng = np.random.default_rng(7)
    base = rng.standard_normal((2, 3)) * 3
    for descr, dt in NPY_DTYPES:
        if dt == "BOOL":
            a = base > 0
        elif descr[1] == "u":
            a = np.abs(base * 40).astype(descr)
        else:
            a = (base * (1 if descr[1] == "f" else 40)).astype(descr)
        name = f"{dt.lower()}.npy"
        np.save(os.path.join(out, name), a)
        expected[name] = record(a, dt)
    a = np.float32(2.5).reshape(())
    np.save(os.path.join(out, "scalar.npy"), a)
    expected["scalar.npy"] = record(a, "F32")
    a = np.zeros((0, 3), np.float32)
    np.save(os.path.join(out, "empty.npy"), a)
    expected["empty.npy"] = record(a, "F32")
    a = np.arange(24, dtype="<f4").reshape(2, 3, 4) / 7
    for ver in [(2, 0), (3, 0)]:
        name = f"v{ver[0]}.npy"
        with open(os.path.join(out, name), "wb") as f:
            np.lib.format.write_array(f, a, version=ver)
        expected[name] = record(a, "F32")
    np.save(os.path.join(out, "fortran.npy"), np.asfortranarray(base.astype("<f4")))
    expected["fortran.npy"] = {"error": "fortran_order"}
    np.save(os.path.join(out, "bigendian.npy"), base.astype(">f4"))
    expected["bigendian.npy"] = {"error": "big-endian"}
    np.save(os.path.join(out, "complex.npy"), base.astype("<c8"))
    expected["complex.npy"] = {"error": "unsupported dtype"}

    x = (base * 2).astype("<f4")
    y = np.arange(5, dtype="<i8")
    np.savez(os.path.join(out, "savez.npz"), x=x, y=y)
    np.savez_compressed(os.path.join(out, "savez_compressed.npz"), x=x, y=y, z=np.zeros(5000, "<f4"))
    expected["savez.npz"] = {"x": record(x, "F32"), "y": record(y, "I64")}
    expected["savez_compressed.npz"] = {"x": record(x, "F32"), "y": record(y, "I64"),
                                        "z": record(np.zeros(5000, "<f4"), "F32")}


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype_str, shape, raw little-endian bytes)."""
    align = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2}
    order = sorted(tensors, key=lambda t: (-align.get(t[1], 1), t[0]))
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dt, shape, raw in order:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-(8 + len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def make_safetensors(out, expected):
    rng = np.random.default_rng(11)
    base = rng.standard_normal((3, 4)) * 5
    tensors, exp = [], {}
    for descr, dt in NPY_DTYPES:
        if dt == "BOOL":
            a = base > 0
        elif descr[1] == "u":
            a = np.abs(base * 20).astype(descr)
        else:
            a = (base * (1 if descr[1] == "f" else 20)).astype(descr)
        tensors.append((f"t_{dt.lower()}", dt, a.shape, a.tobytes()))
        exp[f"t_{dt.lower()}"] = record(a, dt)
    if torch is not None:
        b = torch.tensor(base, dtype=torch.bfloat16)
        raw = b.view(torch.int16).numpy().astype("<i2").tobytes()
        tensors.append(("t_bf16", "BF16", tuple(b.shape), raw))
        exp["t_bf16"] = record(b.float().numpy(), "BF16")
    tensors.append(("empty", "F32", (0, 2), b""))
    exp["empty"] = record(np.zeros((0, 2), np.float32), "F32")
    write_safetensors(os.path.join(out, "dtypes.safetensors"), tensors, {"format": "pt", "note": "golden"})
    exp["__metadata__"] = {"format": "pt", "note": "golden"}
    expected["dtypes.safetensors"] = exp


def make_pth(out, expected):
    g = torch.Generator().manual_seed(3)
    big = torch.randn(4, 6, generator=g)
    shared = torch.randn(10, generator=g)
    sd = {
        "f32": torch.randn(2, 3, generator=g),
        "f16": torch.randn(5, generator=g).half(),
        "bf16": torch.randn(2, 2, generator=g).bfloat16(),
        "f64": torch.randn(3, generator=g).double(),
        "i64": torch.tensor([3, -4, 5], dtype=torch.int64),
        "i32": torch.tensor([7, -8], dtype=torch.int32),
        "u8": torch.tensor([0, 255, 9], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(1.25),
        "num_batches_tracked": torch.tensor(12345, dtype=torch.int64),
        "transposed": big.t(),
        "offset_view": shared[3:7],
        "shared_a": shared[:4],
        "strided": big[::2, 1::2],
        "empty": torch.zeros(0, 4),
    }
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
             torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}

    def rec(t):
        return {"dtype": names[t.dtype], "shape": list(t.shape), "values": values(t.float().numpy())}

    exp = {k: rec(v) for k, v in sd.items()}
    torch.save(sd, os.path.join(out, "tensors.pth"))
    expected["tensors.pth"] = exp
    torch.save(sd, os.path.join(out, "tensors_legacy.pth"), _use_new_zipfile_serialization=False)
    expected["tensors_legacy.pth"] = exp
    torch.save(sd, os.path.join(out, "tensors_p4.pth"), pickle_protocol=4)
    expected["tensors_p4.pth"] = exp

    # A module state dict (OrderedDict with _metadata), wrapped as a training checkpoint would be.
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    msd = m.state_dict()
    wrapped_sd = collections.OrderedDict(("module." + k, v) for k, v in msd.items())
    wrapped_sd._metadata = msd._metadata  # as DataParallel's state_dict() would carry it
    wrapped = {"epoch": 3, "arch": "tiny", "best_acc1": torch.tensor(0.5),
               "state_dict": wrapped_sd,
               "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "momentum": 0.9, "params": [0, 1]}]}}
    torch.save(wrapped, os.path.join(out, "checkpoint.pth"))
    expected["checkpoint.pth"] = {k: rec(v) for k, v in msd.items()}
    # A whole pickled module is code, not data: readers must refuse it (like weights_only=True).
    torch.save(m, os.path.join(out, "whole_module.pth"))
    expected["whole_module.pth"] = {"error": "refused global torch.nn.modules.container.Sequential"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "test", "io-golden"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    expected = {}
    make_npy(args.out, expected)
    make_safetensors(args.out, expected)
    if torch is not None:
        make_pth(args.out, expected)
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, sort_keys=True, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {len(expected)} golden files to {args.out}")


if __name__ == "__main__":
    main()
