#!/usr/bin/env python3
"""Train-mode forward error of every torchvision ResNet builder at small inputs (issue 15, item 8).

For each builder (num_classes=10) and each input size, the weights and the input come from a
counter-based hash that test/train-error.test.ts reproduces bit for bit in TypeScript, so no
weights are stored: only PyTorch's train-mode logits in float32 and in float64 (same float32
weights and input, model.double()). Run with Debian's PyTorch: /usr/bin/python3.
Writes <out>/<builder>_<N>x<S>_f32.npy and _f64.npy, and a manifest.json.
"""
import argparse, json, math, os
import numpy as np
import torch
import torchvision.models as TV

BUILDERS = ['resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152', 'resnext50_32x4d',
            'resnext101_32x8d', 'resnext101_64x4d', 'wide_resnet50_2', 'wide_resnet101_2']
# [N, 3, S, S]: layer4 is 2x2, so its BatchNorms normalise 8 values per channel. (At 32 px, 1x1
# and 2 values per channel, PyTorch float32 itself is off by 7e-3 (resnet18) to 4e-1 (resnet50)
# relative L2 from float64: chaos, not a measurement.)
INPUTS = [[2, 3, 64, 64]]


def fnv1a(s):
    h = 0x811c9dc5
    for b in s.encode('utf-8'):
        h = ((h ^ b) * 0x01000193) & 0xffffffff
    return h


def hashed(name, n, bound, center=0.0):
    """n float32 values in [center - bound, center + bound), from (name, index) only."""
    i = np.arange(n, dtype=np.uint64)
    h = (i * np.uint64(2654435761) + np.uint64(fnv1a(name))) & np.uint64(0xffffffff)
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x45d9f3b)) & np.uint64(0xffffffff)
    h ^= h >> np.uint64(16)
    u = h.astype(np.float64) / 4294967296.0
    return ((u * 2 - 1) * bound + center).astype(np.float32)


def value_of(name, shape):
    """The synthetic value of one state-dict entry (kaiming-uniform-like weights, BN affine near 1/0)."""
    n = int(np.prod(shape)) if len(shape) else 1
    leaf = name.rsplit('.', 1)[-1]
    if leaf == 'num_batches_tracked':
        return np.zeros(shape, np.int64)
    if leaf == 'running_mean':
        return np.zeros(shape, np.float32)
    if leaf == 'running_var':
        return np.ones(shape, np.float32)
    if len(shape) >= 2:  # conv / linear weight
        fan_in = n // shape[0]
        return hashed(name, n, math.sqrt(6.0 / fan_in)).reshape(shape)
    if name.startswith('fc.'):  # linear bias
        return hashed(name, n, 1.0 / math.sqrt(512)).reshape(shape)
    if leaf == 'weight':  # BN gamma
        return hashed(name, n, 0.5, 1.0).reshape(shape)
    return hashed(name, n, 0.5).reshape(shape)  # BN beta


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    manifest = {}
    for b in BUILDERS:
        model = getattr(TV, b)(num_classes=10)
        sd = {k: torch.from_numpy(value_of(k, list(v.shape))) for k, v in model.state_dict().items()}
        model.load_state_dict(sd)
        for shape in INPUTS:
            x = torch.from_numpy(hashed('input', int(np.prod(shape)), 1.0).reshape(shape))
            tag = f'{b}_{shape[0]}x{shape[2]}'
            model.load_state_dict(sd)
            model.float().train()
            with torch.no_grad():
                y32 = model(x).numpy()
            model.load_state_dict(sd)
            m64 = model.double().train()
            with torch.no_grad():
                y64 = m64(x.double()).numpy()
            model.float()
            np.save(os.path.join(args.out, f'{tag}_f32.npy'), y32.astype('<f4'))
            np.save(os.path.join(args.out, f'{tag}_f64.npy'), y64.astype('<f8'))
            rel = float(np.linalg.norm(y32.astype(np.float64) - y64) / np.linalg.norm(y64))
            manifest[tag] = {'builder': b, 'input': shape, 'torch_f32_rel_l2': rel}
            print(f'{tag}: PyTorch float32 train-mode logits rel. L2 vs float64 {rel:.2e}', flush=True)
    with open(os.path.join(args.out, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)


if __name__ == '__main__':
    main()
