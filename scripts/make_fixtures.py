#!/usr/bin/python3
"""Write PyTorch golden fixtures for resnet-ts tests.

Run with Debian's python3 (python3-torch 1.13, python3-torchvision 0.14):

    /usr/bin/python3 scripts/make_fixtures.py --out test/fixtures
    /usr/bin/python3 scripts/make_fixtures.py --only resnet18,d2l_resnet18

See scripts/README.md for the layout of every file written.
"""

import argparse
import copy
import hashlib
import json
import os
import shutil
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

import fixture_margin  # noqa: E402 (scripts/ is on sys.path when a script here runs)

# ----------------------------------------------------------------------------
# file writers
# ----------------------------------------------------------------------------

_DTYPES = {
    torch.float32: ("F32", "<f4"),
    torch.int64: ("I64", "<i8"),
}


def tensor_bytes(t):
    """Little-endian, C-order bytes of a CPU tensor, and its safetensors dtype."""
    t = t.detach().cpu().contiguous()
    if t.dtype not in _DTYPES:
        raise TypeError("unsupported dtype %s" % t.dtype)
    name, np_dtype = _DTYPES[t.dtype]
    arr = np.ascontiguousarray(t.numpy().astype(np_dtype, copy=False))
    return name, list(t.shape), arr.tobytes(order="C")


def write_safetensors(path, tensors):
    """tensors: ordered mapping name -> torch.Tensor (float32 or int64).

    Layout: u64 LE header length, JSON header padded with spaces to a
    multiple of 8 bytes, then the raw tensor bytes in the header's order.
    """
    header = {"__metadata__": {"format": "pt"}}
    chunks = []
    offset = 0
    for name, t in tensors.items():
        dtype, shape, raw = tensor_bytes(t)
        header[name] = {
            "dtype": dtype,
            "shape": shape,
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((-len(hjson)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for c in chunks:
            f.write(c)


def read_safetensors(path):
    """Minimal reader used only to self-check what write_safetensors wrote."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        np_dtype = {"F32": "<f4", "I64": "<i8"}[info["dtype"]]
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b : base + e], dtype=np_dtype)
        out[name] = arr.reshape(info["shape"])
    return out


def save_npy(path, t, np_dtype):
    arr = t.detach().cpu().contiguous().numpy().astype(np_dtype, copy=False)
    np.save(path, np.ascontiguousarray(arr), allow_pickle=False)


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------
# models written here (not in torchvision)
# ----------------------------------------------------------------------------


class D2LResidual(nn.Module):
    """Residual block of d2l.ai section 8.6 (conv biases, optional 1x1 shortcut conv)."""

    def __init__(self, input_channels, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.Conv2d(input_channels, num_channels, 3, padding=1, stride=strides)
        self.conv2 = nn.Conv2d(num_channels, num_channels, 3, padding=1)
        if use_1x1conv:
            self.conv3 = nn.Conv2d(input_channels, num_channels, 1, stride=strides)
        else:
            self.conv3 = None
        self.bn1 = nn.BatchNorm2d(num_channels)
        self.bn2 = nn.BatchNorm2d(num_channels)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.conv3 is not None:
            x = self.conv3(x)
        return F.relu(y + x)


def d2l_stage(input_channels, num_channels, num_residuals, first_block=False):
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_block:
            blocks.append(D2LResidual(input_channels, num_channels, use_1x1conv=True, strides=2))
        else:
            blocks.append(D2LResidual(num_channels, num_channels))
    return nn.Sequential(*blocks)


def d2l_resnet18(num_classes=10, in_channels=1):
    b1 = nn.Sequential(
        nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
    )
    return nn.Sequential(
        b1,
        d2l_stage(64, 64, 2, first_block=True),
        d2l_stage(64, 128, 2),
        d2l_stage(128, 256, 2),
        d2l_stage(256, 512, 2),
        nn.AdaptiveAvgPool2d((1, 1)),
        nn.Flatten(),
        nn.Linear(512, num_classes),
    )


class CifarBasicBlock(nn.Module):
    """He et al. 2015 CIFAR block with the parameter-free option-A shortcut."""

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = planes // 4 if (stride != 1 or in_planes != planes) else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.pad is None:
            sc = x
        else:
            sc = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(out + sc)


class CifarResNet(nn.Module):
    def __init__(self, depth=20, num_classes=10):
        super().__init__()
        assert (depth - 2) % 6 == 0
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        in_planes = 16
        for li, (planes, stride) in enumerate([(16, 1), (32, 2), (64, 2)], start=1):
            blocks = []
            for i in range(n):
                blocks.append(CifarBasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            setattr(self, "layer%d" % li, nn.Sequential(*blocks))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


# ----------------------------------------------------------------------------
# model cases
# ----------------------------------------------------------------------------

TV = torchvision.models

# name -> (registry builder name, arch options (camelCase JSON), constructor, input shape,
#          seed, randomize BN?)
MODEL_CASES = {
    "resnet18": dict(
        model="resnet18", arch={"numClasses": 10},
        build=lambda: TV.resnet18(num_classes=10), input=[2, 3, 64, 64], seed=18,
        params=11181642),
    "resnet34": dict(
        model="resnet34", arch={"numClasses": 10},
        build=lambda: TV.resnet34(num_classes=10), input=[2, 3, 64, 64], seed=34,
        params=21289802),
    "resnet50": dict(
        model="resnet50", arch={"numClasses": 10},
        build=lambda: TV.resnet50(num_classes=10), input=[2, 3, 64, 64], seed=50,
        params=23528522),
    "resnext50_32x4d": dict(
        model="resnext50_32x4d", arch={"numClasses": 10},
        build=lambda: TV.resnext50_32x4d(num_classes=10), input=[2, 3, 64, 64], seed=5032,
        params=23000394),
    "resnet50_dilated": dict(
        model="resnet50",
        arch={"numClasses": 7, "replaceStrideWithDilation": [False, True, True]},
        build=lambda: TV.resnet50(num_classes=7, replace_stride_with_dilation=[False, True, True]),
        input=[1, 3, 64, 64], seed=507, params=23522375),
    "resnet18_zeroinit": dict(
        model="resnet18", arch={"numClasses": 10, "zeroInitResidual": True},
        build=lambda: TV.resnet18(num_classes=10, zero_init_residual=True),
        input=[2, 3, 64, 64], seed=180, randomize_bn=False, params=11181642),
    "d2l_resnet18": dict(
        model="d2l_resnet18", arch={},
        # seed 132, not 86: the first seed >= 86 whose ReLU / max-pool decisions all keep a margin
        # from float32 rounding, so that train-mode gradients are well conditioned (the rule and
        # the measurements behind it: scripts/fixture_margin.py; checked before writing)
        build=lambda: d2l_resnet18(), input=[2, 1, 96, 96], seed=132,
        params=11178378, margin_check=fixture_margin.check_d2l_seed),
    "cifar_resnet20": dict(
        model="cifar_resnet20", arch={"numClasses": 10},
        build=lambda: CifarResNet(20, 10), input=[2, 3, 32, 32], seed=20,
        params=269722),
}


def randomize_bn(model):
    """Give every BatchNorm non-trivial affine params and running stats (global RNG)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(3)


def bn_buffers(model):
    out = {}
    for name, b in model.named_buffers():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("running_mean", "running_var", "num_batches_tracked"):
            out[name] = b.detach().clone()
    return out


def make_model_case(name, spec, out_dir):
    seed = spec["seed"]
    torch.manual_seed(seed)
    model = spec["build"]()
    n_params = sum(p.numel() for p in model.parameters())
    if n_params != spec["params"]:
        raise AssertionError("%s: %d parameters, expected %d" % (name, n_params, spec["params"]))
    bn_randomized = spec.get("randomize_bn", True)
    if bn_randomized:
        randomize_bn(model)
    x = torch.randn(spec["input"])
    if "margin_check" in spec:
        spec["margin_check"](name, seed, model, x)
    num_classes = model.state_dict()[list(model.state_dict())[-1]].shape[0]
    targets = torch.randint(0, num_classes, (spec["input"][0],), dtype=torch.int64)

    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    train_model = copy.deepcopy(model)

    model.eval()
    with torch.no_grad():
        logits_eval = model(x)

    train_model.train()
    logits_train = train_model(x)
    loss = F.cross_entropy(logits_train, targets)
    loss.backward()
    grads = {}
    for pname, p in train_model.named_parameters():
        if p.grad is None:
            raise AssertionError("%s: no gradient for %s" % (name, pname))
        grads[pname] = p.grad.detach().clone()

    write_safetensors(os.path.join(out_dir, "weights.safetensors"), state)
    save_npy(os.path.join(out_dir, "input.npy"), x, "<f4")
    save_npy(os.path.join(out_dir, "targets.npy"), targets, "<i8")
    save_npy(os.path.join(out_dir, "logits_eval.npy"), logits_eval, "<f4")
    save_npy(os.path.join(out_dir, "logits_train.npy"), logits_train, "<f4")
    save_npy(os.path.join(out_dir, "loss.npy"), loss.detach().reshape(1), "<f4")
    write_safetensors(os.path.join(out_dir, "state_after_train.safetensors"), bn_buffers(train_model))
    write_safetensors(os.path.join(out_dir, "grads.safetensors"), grads)

    # The same computation in float64 from the same (float32) weights and input. Train-mode BN
    # over tiny batches (layer4 of a 64x64 input normalises 8 values per channel) amplifies
    # rounding: PyTorch's own float32 result differs from this by more than 1e-4 relative, so
    # the float64 run is the oracle that tight tolerances are checked against.
    m64 = copy.deepcopy(model).double()
    m64.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in state.items()})
    m64.eval()
    with torch.no_grad():
        logits_eval64 = m64(x.double())
    m64.train()
    logits_train64 = m64(x.double())
    loss64 = F.cross_entropy(logits_train64, targets)
    loss64.backward()
    save_npy(os.path.join(out_dir, "logits_eval_f64.npy"), logits_eval64.float(), "<f4")

    # Eval-mode backward (BN uses running stats): well conditioned, so it checks every backward
    # rule of the whole network elementwise at tight tolerances.
    for dt, fname in ((torch.float32, "grads_eval.safetensors"), (torch.float64, "grads_eval_f64.safetensors")):
        me = copy.deepcopy(model).to(dt)
        me.load_state_dict({k: v.to(dt) if v.is_floating_point() else v for k, v in state.items()})
        me.eval()
        F.cross_entropy(me(x.to(dt)), targets).backward()
        write_safetensors(os.path.join(out_dir, fname), {k: p.grad.detach().float() for k, p in me.named_parameters()})
    save_npy(os.path.join(out_dir, "logits_train_f64.npy"), logits_train64.detach().float(), "<f4")
    save_npy(os.path.join(out_dir, "loss_f64.npy"), loss64.detach().float().reshape(1), "<f4")
    write_safetensors(os.path.join(out_dir, "state_after_train_f64.safetensors"),
                      {k: (v.float() if v.is_floating_point() else v) for k, v in bn_buffers(m64).items()})
    write_safetensors(os.path.join(out_dir, "grads_f64.safetensors"),
                      {k: p.grad.detach().float() for k, p in m64.named_parameters()})
    write_json(os.path.join(out_dir, "arch.json"), {
        "model": spec["model"],
        "arch": spec["arch"],
        "input": spec["input"],
        "seed": seed,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numParams": n_params,
        "bnRandomized": bn_randomized,
        "loss": float(loss.item()),
        "logitsEvalAbsMax": float(logits_eval.abs().max().item()),
        "logitsTrainAbsMax": float(logits_train.abs().max().item()),
    })

    # self-check: the safetensors we wrote read back bit-exactly
    back = read_safetensors(os.path.join(out_dir, "weights.safetensors"))
    for k, v in state.items():
        if not np.array_equal(back[k], v.numpy()):
            raise AssertionError("%s: safetensors round trip failed for %s" % (name, k))


# ----------------------------------------------------------------------------
# op-level cases
# ----------------------------------------------------------------------------


def conv_configs():
    # name, N, C, H, W, outC, kernel, stride, padding, dilation, groups, bias
    return [
        ("conv2d_k3_s1_p1", 2, 3, 5, 7, 4, 3, 1, 1, 1, 1, True),
        ("conv2d_k3_s2_p0_nobias", 2, 6, 7, 5, 5, 3, 2, 0, 1, 1, False),
        ("conv2d_k3_s1_p2_d2_g2", 2, 6, 5, 7, 4, 3, 1, 2, 2, 2, True),
        ("conv2d_k3_s2_p1_g4", 1, 4, 5, 7, 8, 3, 2, 1, 1, 4, True),
        ("conv2d_k3_s2_p2_d2_g2_nobias", 2, 6, 9, 7, 6, 3, 2, 2, 2, 2, False),
        ("conv2d_k1_s2_p0_nobias", 2, 3, 7, 5, 5, 1, 2, 0, 1, 1, False),
        ("conv2d_k1_s1_p0", 1, 6, 5, 7, 3, 1, 1, 0, 1, 1, True),
        ("conv2d_k7_s2_p3_nobias", 1, 3, 9, 11, 4, 7, 2, 3, 1, 1, False),
        ("conv2d_k3_s1_p1_1x1input", 3, 3, 1, 1, 2, 3, 1, 1, 1, 1, True),
        ("conv2d_k3_s2_p1_g3_w17", 1, 3, 3, 17, 6, 3, 2, 1, 1, 3, True),
    ]


def grads_of(loss, named):
    gs = torch.autograd.grad(loss, [t for _, t in named])
    return {("grad_" + n): g for (n, _), g in zip(named, gs)}


def make_op_cases(out_dir):
    torch.manual_seed(1234)
    index = []

    def emit(name, op, options, tensors):
        fname = name + ".safetensors"
        write_safetensors(os.path.join(out_dir, fname), tensors)
        index.append({
            "name": name,
            "op": op,
            "file": fname,
            "options": options,
            "tensors": {k: list(v.shape) for k, v in tensors.items()},
        })

    # conv2d
    for (name, n, c, h, w, oc, k, s, p, d, g, has_bias) in conv_configs():
        x = torch.randn(n, c, h, w, requires_grad=True)
        wt = (torch.randn(oc, c // g, k, k) * 0.5).requires_grad_(True)
        b = torch.randn(oc, requires_grad=True) if has_bias else None
        y = F.conv2d(x, wt, b, stride=s, padding=p, dilation=d, groups=g)
        r = torch.randn(y.shape)
        named = [("input", x), ("weight", wt)] + ([("bias", b)] if has_bias else [])
        gr = grads_of((y * r).sum(), named)
        tensors = {"input": x, "weight": wt}
        if has_bias:
            tensors["bias"] = b
        tensors.update({"r": r, "output": y})
        tensors.update(gr)
        emit(name, "conv2d", {
            "kernelSize": k, "stride": s, "padding": p, "dilation": d, "groups": g,
            "bias": has_bias, "inChannels": c, "outChannels": oc,
        }, tensors)

    # max_pool2d
    for (name, shape, k, s, p, ceil) in [
        ("max_pool2d_k3_s2_p1", (2, 3, 7, 5), 3, 2, 1, False),
        ("max_pool2d_k3_s2_p1_ceil", (2, 3, 8, 6), 3, 2, 1, True),
        ("max_pool2d_k3_s2_p0_ceil", (1, 6, 8, 5), 3, 2, 0, True),
        ("max_pool2d_k2_s2_p0", (1, 3, 5, 7), 2, 2, 0, False),
    ]:
        x = torch.randn(*shape, requires_grad=True)
        y = F.max_pool2d(x, k, s, p, ceil_mode=ceil)
        r = torch.randn(y.shape)
        gr = grads_of((y * r).sum(), [("input", x)])
        emit(name, "max_pool2d", {
            "kernelSize": k, "stride": s, "padding": p, "dilation": 1, "ceilMode": ceil,
        }, {"input": x, "r": r, "output": y, **gr})

    # avg_pool2d
    for (name, shape, k, s, p, ceil, cip) in [
        ("avg_pool2d_k3_s2_p1_cip", (2, 3, 7, 5), 3, 2, 1, False, True),
        ("avg_pool2d_k3_s2_p1_nocip", (2, 3, 7, 5), 3, 2, 1, False, False),
        ("avg_pool2d_k3_s2_p1_ceil_cip", (1, 3, 8, 6), 3, 2, 1, True, True),
        ("avg_pool2d_k3_s2_p1_ceil_nocip", (1, 3, 8, 6), 3, 2, 1, True, False),
        ("avg_pool2d_k2_s2_p0", (1, 6, 5, 7), 2, 2, 0, False, True),
    ]:
        x = torch.randn(*shape, requires_grad=True)
        y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=cip)
        r = torch.randn(y.shape)
        gr = grads_of((y * r).sum(), [("input", x)])
        emit(name, "avg_pool2d", {
            "kernelSize": k, "stride": s, "padding": p, "ceilMode": ceil, "countIncludePad": cip,
        }, {"input": x, "r": r, "output": y, **gr})

    # adaptive_avg_pool2d
    for (name, shape, osz) in [
        ("adaptive_avg_pool2d_1x1", (2, 3, 7, 5), [1, 1]),
        ("adaptive_avg_pool2d_3x2", (2, 3, 7, 5), [3, 2]),
    ]:
        x = torch.randn(*shape, requires_grad=True)
        y = F.adaptive_avg_pool2d(x, osz)
        r = torch.randn(y.shape)
        gr = grads_of((y * r).sum(), [("input", x)])
        emit(name, "adaptive_avg_pool2d", {"outputSize": osz},
             {"input": x, "r": r, "output": y, **gr})

    # batch_norm, training mode
    for (name, shape, affine) in [
        ("batch_norm_train_affine", (3, 6, 5, 7), True),
        ("batch_norm_train_noaffine", (2, 3, 5, 7), False),
    ]:
        c = shape[1]
        x = (torch.randn(*shape) * 2.0 + 0.5).requires_grad_(True)
        rm = torch.randn(c) * 0.1
        rv = torch.rand(c) + 0.5
        rm_after, rv_after = rm.clone(), rv.clone()
        tensors = {"input": x, "running_mean": rm, "running_var": rv}
        named = [("input", x)]
        if affine:
            wt = (torch.rand(c) + 0.5).requires_grad_(True)
            b = (torch.randn(c) * 0.1).requires_grad_(True)
            tensors.update({"weight": wt, "bias": b})
            named += [("weight", wt), ("bias", b)]
        else:
            wt = b = None
        y = F.batch_norm(x, rm_after, rv_after, wt, b, training=True, momentum=0.1, eps=1e-5)
        r = torch.randn(y.shape)
        gr = grads_of((y * r).sum(), named)
        tensors.update({"r": r, "output": y, "running_mean_after": rm_after,
                        "running_var_after": rv_after, **gr})
        emit(name, "batch_norm", {"training": True, "affine": affine, "momentum": 0.1,
                                  "eps": 1e-5}, tensors)

    # log_softmax over the class axis
    x = (torch.randn(3, 7) * 3.0).requires_grad_(True)
    y = F.log_softmax(x, dim=1)
    r = torch.randn(y.shape)
    gr = grads_of((y * r).sum(), [("input", x)])
    emit("log_softmax_dim1", "log_softmax", {"dim": 1}, {"input": x, "r": r, "output": y, **gr})

    # cross_entropy (mean reduction); output is the scalar loss stored as shape [1]
    for (name, ls) in [("cross_entropy_ls0.1", 0.1), ("cross_entropy", 0.0)]:
        x = (torch.randn(4, 7) * 2.0).requires_grad_(True)
        t = torch.randint(0, 7, (4,), dtype=torch.int64)
        y = F.cross_entropy(x, t, label_smoothing=ls)
        gr = grads_of(y, [("input", x)])
        emit(name.replace(".", ""), "cross_entropy",
             {"labelSmoothing": ls, "reduction": "mean"},
             {"input": x, "target": t, "output": y.reshape(1), **gr})

    # relu with the special values: PyTorch keeps NaN and -0, and a NaN output passes its gradient on.
    # 23 values: the specials at the start (SIMD lanes) and, reversed, at the end (scalar tail of 3)
    special = torch.tensor([float("nan"), float("inf"), float("-inf"), 0.0, -0.0])
    x = torch.cat([special, torch.randn(13), special.flip(0)]).requires_grad_(True)
    y = F.relu(x)
    r = torch.randn(y.shape)
    gr = grads_of((y * r).sum(), [("input", x)])
    emit("relu_special_values", "relu", {}, {"input": x, "r": r, "output": y, **gr})

    # linear (the fc layer)
    x = torch.randn(3, 5, requires_grad=True)
    wt = torch.randn(4, 5, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    y = F.linear(x, wt, b)
    r = torch.randn(y.shape)
    gr = grads_of((y * r).sum(), [("input", x), ("weight", wt), ("bias", b)])
    emit("linear", "linear", {"inFeatures": 5, "outFeatures": 4, "bias": True},
         {"input": x, "weight": wt, "bias": b, "r": r, "output": y, **gr})

    write_json(os.path.join(out_dir, "index.json"), {
        "torch": torch.__version__,
        "seed": 1234,
        "lossForGrads": "sum(output * r); for cross_entropy the loss itself",
        "cases": index,
    })


# ----------------------------------------------------------------------------
# driver
# ----------------------------------------------------------------------------

ALL_CASES = list(MODEL_CASES) + ["conv_cases", "model_zoo"]


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


def dir_files(d):
    out = []
    for root, _, files in os.walk(d):
        for f in sorted(files):
            p = os.path.join(root, f)
            out.append((os.path.relpath(p, d), os.path.getsize(p)))
    return sorted(out)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_model_zoo(out_dir):
    """Parameter counts and state-dict key names/shapes of every torchvision ResNet builder
    (and the two models defined above), from the constructors themselves; no forward passes."""
    zoo = {}
    builders = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]
    for b in builders:
        fn = getattr(torchvision.models, b, None)
        if fn is None:
            continue
        m = fn()
        zoo[b] = {"numParams": sum(p.numel() for p in m.parameters()),
                  "stateDict": [[k, list(v.shape)] for k, v in m.state_dict().items()]}
    for name, m in (("d2l_resnet18", d2l_resnet18()), ("cifar_resnet20", CifarResNet(20))):
        zoo[name] = {"numParams": sum(p.numel() for p in m.parameters()),
                     "stateDict": [[k, list(v.shape)] for k, v in m.state_dict().items()]}
    write_json(os.path.join(out_dir, "zoo.json"), zoo)


def main(argv=None):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(repo, "test", "fixtures"),
                    help="output folder (default: test/fixtures)")
    ap.add_argument("--only", default="",
                    help="comma-separated case names (default: all): " + ",".join(ALL_CASES))
    ap.add_argument("--list", action="store_true", help="list case names and exit")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = ap.parse_args(argv)

    if args.list:
        print("\n".join(ALL_CASES))
        return 0
    cases = [c.strip() for c in args.only.split(",") if c.strip()] or ALL_CASES
    unknown = [c for c in cases if c not in ALL_CASES]
    if unknown:
        ap.error("unknown case(s): %s (known: %s)" % (", ".join(unknown), ", ".join(ALL_CASES)))

    torch.set_num_threads(args.threads)
    t_all = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    total = 0
    for case in cases:
        t0 = time.perf_counter()
        final = os.path.join(args.out, case)
        tmp = final + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        if case == "conv_cases":
            make_op_cases(tmp)
        elif case == "model_zoo":
            make_model_zoo(tmp)
        else:
            make_model_case(case, MODEL_CASES[case], tmp)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        files = dir_files(final)
        size = sum(s for _, s in files)
        total += size
        print("%s/ (%d files, %s, %.2f s)" % (final, len(files), human(size), time.perf_counter() - t0))
        if case != "conv_cases":
            for f, s in files:
                print("    %-32s %10s" % (f, human(s)))

    # manifest over every case folder present (so --only keeps it complete)
    manifest = {"torch": torch.__version__, "torchvision": torchvision.__version__, "cases": {}}
    for case in ALL_CASES:
        d = os.path.join(args.out, case)
        if os.path.isdir(d):
            manifest["cases"][case] = {f: {"bytes": s, "sha256": sha256(os.path.join(d, f))}
                                       for f, s in dir_files(d)}
    write_json(os.path.join(args.out, "manifest.json"), manifest)
    print("wrote %d case(s), %s, in %.1f s (torch %s, %d threads)" % (
        len(cases), human(total), time.perf_counter() - t_all, torch.__version__, args.threads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
