#!/usr/bin/python3
"""Write test/hostile/py/: malicious files made by Python's own pickler, numpy and torch.save.

    /usr/bin/python3 scripts/make_hostile.py

Every payload, if ever unpickled by Python, would run `touch /tmp/resnet-ts-hostile-marker`
(harmless; test/io-hostile.test.ts asserts the marker never appears when our readers see these
files). manifest.json names, per file, the reader it targets and the error it must raise there.
The byte-level corpus (bombs, bad offsets, lying headers) is built in TypeScript instead:
test/hostile/corpus.ts.
"""

import json
import os
import pickle
import subprocess

import numpy as np

MARKER = "/tmp/resnet-ts-hostile-marker"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "hostile", "py")


class System:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


class Eval:
    def __reduce__(self):
        return (eval, (f"__import__('os').system('touch {MARKER}')",))


class Exec:
    def __reduce__(self):
        return (exec, (f"import os; os.system('touch {MARKER}')",))


class Popen:
    def __reduce__(self):
        return (subprocess.Popen, (["touch", MARKER],))


class ImportOs:
    def __reduce__(self):
        return (__import__, ("os",))


class GetSystem:
    """Pickles as getattr(__import__('os'), 'system'); callable so it can head a REDUCE."""

    def __call__(self, *a):
        return None

    def __reduce__(self):
        return (getattr, (ImportOs(), "system"))


class Getattr:
    def __reduce__(self):
        return (GetSystem(), (f"touch {MARKER}",))


PAYLOADS = {"system": (System, r"refused global (posix|os)\.system"),
            "eval": (Eval, r"refused global (builtins|__builtin__)\.eval"),
            "exec": (Exec, r"refused global (builtins|__builtin__)\.exec"),
            "popen": (Popen, r"refused global (subprocess|commands)\.Popen"),
            "getattr": (Getattr, r"refused global (builtins|__builtin__)\.getattr")}


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {}
    for kind, (cls, err) in PAYLOADS.items():
        for proto in range(6):
            name = f"{kind}-p{proto}.pkl"
            with open(os.path.join(OUT, name), "wb") as f:
                pickle.dump({"state_dict": {}, "payload": cls()}, f, protocol=proto)
            manifest[name] = {"reader": "pickle", "expect": err, "unsafe": True}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        sd = {"w": torch.ones(2, 2), "payload": System()}
        torch.save(sd, os.path.join(OUT, "evil-zip.pth"))
        manifest["evil-zip.pth"] = {"reader": "pth", "expect": r"refused global (posix|os)\.system", "unsafe": True}
        torch.save(sd, os.path.join(OUT, "evil-legacy.pth"), _use_new_zipfile_serialization=False)
        manifest["evil-legacy.pth"] = {"reader": "pth", "expect": r"refused global (posix|os)\.system", "unsafe": True}
        torch.save({"state_dict": {"w": torch.ones(1)}, "extra": Eval()}, os.path.join(OUT, "evil-checkpoint-p4.pth"),
                   pickle_protocol=4)
        manifest["evil-checkpoint-p4.pth"] = {"reader": "pth", "expect": r"refused global (builtins|__builtin__)\.eval", "unsafe": True}
    arr = np.array([System()], dtype=object)
    np.save(os.path.join(OUT, "object-array.npy"), arr, allow_pickle=True)
    manifest["object-array.npy"] = {"reader": "npy", "expect": r"unsupported dtype '\|O'"}
    np.savez(os.path.join(OUT, "object-array.npz"), x=arr)
    manifest["object-array.npz"] = {"reader": "npz", "expect": r"unsupported dtype '\|O'"}
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {len(manifest)} hostile files to {OUT}")


if __name__ == "__main__":
    main()
