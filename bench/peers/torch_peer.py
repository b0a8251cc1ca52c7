#!/usr/bin/python3
"""PyTorch peer for `npm run bench` (bench/run.ts), and the ONNX exporter used until our own.

Speaks JSON lines on stdin/stdout so the harness can interleave PyTorch runs with the other
peers in one session:

  {"cmd": "info"}                                   -> {"torch": "1.13.0", "threads": 2}
  {"cmd": "setup", "kind": "infer", "model": "resnet18", "batch": 1, "size": 224, "channels": 3}
  {"cmd": "setup", "kind": "train", "model": "d2l_resnet18", "batch": 128, "size": 96, "channels": 1}
                                                    -> {"ok": true, "params": 11689512}
  {"cmd": "setup", "kind": "gemm", "n": 1024}     -> {"ok": true}   (torch.mm of two n x n float32)
  {"cmd": "run"}                                    -> {"ms": 31.2, "cpu_ms": 60.1}   (one timed call, measured
                                                       here; cpu_ms = process CPU time, all threads)
  {"cmd": "release"}                                -> {"ok": true}   (drops the model)
  {"cmd": "export", "model": "resnet18", "path": "x.onnx", "size": 224, "channels": 3}
                                                    -> {"ok": true, "params": ...}
  {"cmd": "quit"}

Errors come back as {"error": "..."}; the process keeps serving. Timing is inside Python
(time.perf_counter around the call), so the pipe is not counted.
Usage: /usr/bin/python3 bench/peers/torch_peer.py [--threads 2]
"""
import gc
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class Residual(nn.Module):
    """d2l's residual block (Dive into Deep Learning, section 8.6), as in src/models/d2l.ts."""

    def __init__(self, cin, cout, use1x1=False, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv3 = nn.Conv2d(cin, cout, 1, stride=stride) if use1x1 else None
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return F.relu(y + x)


def d2l_resnet18(in_channels=1, num_classes=10):
    def block(cin, cout, n, first=False):
        return nn.Sequential(*[Residual(cin, cout, True, 2) if i == 0 and not first else Residual(cout, cout)
                               for i in range(n)])

    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(in_channels, 64, 7, stride=2, padding=3), nn.BatchNorm2d(64), nn.ReLU(),
                      nn.MaxPool2d(3, stride=2, padding=1)),
        block(64, 64, 2, True), block(64, 128, 2), block(128, 256, 2), block(256, 512, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
    return net


def build(name, channels):
    if name == "d2l_resnet18":
        return d2l_resnet18(in_channels=channels)
    m = getattr(torchvision.models, name)(weights=None)
    if channels != 3:
        raise ValueError(f"{name} takes 3 channels here, got {channels}")
    return m


def nparams(m):
    return sum(p.numel() for p in m.parameters())


class State:
    fn = None


def setup(msg):
    torch.manual_seed(0)
    State.fn = None
    gc.collect()
    if msg["kind"] == "gemm":
        n = msg["n"]
        a, b = torch.rand(n, n) * 2 - 1, torch.rand(n, n) * 2 - 1
        State.fn = lambda: torch.mm(a, b)
        return {"ok": True}
    n, c, s = msg["batch"], msg.get("channels", 3), msg["size"]
    model = build(msg["model"], c)
    x = torch.randn(n, c, s, s)
    if msg["kind"] == "infer":
        model.eval()

        def fn():
            with torch.no_grad():
                return model(x)
    elif msg["kind"] == "train":
        model.train()
        ncls = model[-1].out_features if isinstance(model, nn.Sequential) else model.fc.out_features
        y = torch.randint(0, ncls, (n,))
        opt = torch.optim.SGD(model.parameters(), lr=msg.get("lr", 0.05), momentum=msg.get("momentum", 0.9))

        def fn():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()
    else:
        raise ValueError(f"unknown kind {msg['kind']}")
    State.fn = fn
    return {"ok": True, "params": nparams(model)}


def release(_msg):
    State.fn = None
    gc.collect()
    return {"ok": True}


def run(_msg):
    if State.fn is None:
        raise ValueError("run before setup")
    c0 = time.process_time()
    t0 = time.perf_counter()
    State.fn()
    t1 = time.perf_counter()
    return {"ms": (t1 - t0) * 1e3, "cpu_ms": (time.process_time() - c0) * 1e3}


def export(msg):
    torch.manual_seed(0)
    c, s = msg.get("channels", 3), msg["size"]
    model = build(msg["model"], c).eval()
    x = torch.randn(1, c, s, s)
    torch.onnx.export(model, x, msg["path"], input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13,
                      do_constant_folding=True)
    return {"ok": True, "params": nparams(model)}


def main():
    threads = 2
    if "--threads" in sys.argv:
        threads = int(sys.argv[sys.argv.index("--threads") + 1])
    torch.set_num_threads(threads)
    handlers = {
        "info": lambda m: {"torch": torch.__version__, "threads": torch.get_num_threads(),
                           "interop_threads": torch.get_num_interop_threads()},
        "setup": setup, "run": run, "export": export, "release": release,
    }
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            if msg.get("cmd") == "quit":
                break
            out = handlers[msg["cmd"]](msg)
        except Exception as e:  # report and keep serving
            out = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
