#!/usr/bin/python3
"""Well-conditioned seeds for d2l_resnet18's train-mode gradient fixtures (issue 14).

Train-mode gradients go through every ReLU's 0/1 mask and every max-pool's argmax. Where a float64
ReLU input lies within float32 rounding of zero (or a max-pool window's two largest values lie
that close), a correct float32 backend may take the other branch, and with train-mode BatchNorm
that one element moves every gradient of its channel and of everything below it. Measured on the
old seed 86: block 2.1's second ReLU input [1, 67, 0, 2] is 3.36e-6 in float64, 1.9x the layer's
float32 error; the webgpu backend computed exactly 0 there (its addends -1.0265608 and 1.0265608
each off by ~1e-6, ordinary rounding), dropped that gradient element and was 6.7e-3 relative L2
off float64 in 2.1.bn2.bias and below, while ref and wasm, forced to the same 0, were off by
exactly as much. So the fixture's seed is chosen by this rule instead of by chance:

    the first seed >= the case's base seed for which every float64 ReLU input of the train-mode
    forward, and the lead of every stem max-pool window's largest value over its second largest,
    is at least MARGIN x that layer's float32 rounding error (the RMS of PyTorch float32 minus
    float64 over the layer).

MARGIN = 6: our float32 backends' own rounding error at these layers is up to 1.4x PyTorch's
(RMS per layer, measured on seed 132: webgpu on llvmpipe 1.11-1.40x, wasm 0.91-1.03x), so every
decision keeps >= 4.3 standard deviations of our error (on seed 132 webgpu's nearest is 5.9). About 1 seed in 60 qualifies (the ~1M decisions of a
2x1x96x96 batch put ~4 values within 6 units of zero on average).

    /usr/bin/python3 scripts/fixture_margin.py [--from 86] [--count 1]   # search and print seeds
"""

import argparse
import copy
import sys

import numpy as np
import torch
import torch.nn.functional as F

MARGIN = 6.0


def _decisions(model, x, dtype):
    """d2l_resnet18 train-mode forward in `dtype`: {layer: its ReLU inputs}, and the stem max-pool
    windows' lead of the largest over the second-largest value (inf where the window max is 0:
    an exact tie of zeros whose signs are already covered by the stem ReLU inputs)."""
    m = copy.deepcopy(model).to(dtype).train()
    stem = m[0]  # Conv2d, BatchNorm2d, ReLU, MaxPool2d(3, 2, 1)
    s = stem[1](stem[0](x.to(dtype)))
    out = {"stem": s}
    r = F.relu(s)
    n, c, h, w = r.shape
    padded = F.pad(r, (1, 1, 1, 1), value=-float("inf")).reshape(n * c, 1, h + 2, w + 2)
    top2 = F.unfold(padded, 3, stride=2).topk(2, dim=1).values  # [n*c, 2, windows]
    lead = top2[:, 0] - top2[:, 1]
    lead = torch.where(top2[:, 0] > 0, lead, torch.full_like(lead, float("inf")))
    y = stem[3](r)
    for si in range(1, 5):
        for bi, blk in enumerate(m[si]):
            a = blk.bn1(blk.conv1(y))
            out["%d.%d.relu1" % (si, bi)] = a
            z = blk.bn2(blk.conv2(F.relu(a))) + (blk.conv3(y) if blk.conv3 is not None else y)
            out["%d.%d.relu2" % (si, bi)] = z
            y = F.relu(z)
    return out, lead


def d2l_margin(model, x):
    """The smallest distance of a ReLU / max-pool decision from its threshold, in units of that
    layer's float32 rounding error, and where it is: (units, description)."""
    with torch.no_grad():
        d64, lead64 = _decisions(model, x, torch.float64)
        d32, _ = _decisions(model, x, torch.float32)
    worst = (float("inf"), "")
    for k, v in d64.items():
        sd = (d32[k].double() - v).pow(2).mean().sqrt().item()
        units = v.abs() / sd
        i = int(units.argmin())
        if units.view(-1)[i].item() < worst[0]:
            idx = [int(j) for j in np.unravel_index(i, tuple(v.shape))]
            worst = (units.view(-1)[i].item(), "ReLU input of %s at %s = %.3g (float32 error RMS %.2g)" % (k, idx, v.view(-1)[i].item(), sd))
        if k == "stem":
            q = (lead64 / sd).min().item()
            if q < worst[0]:
                worst = (q, "stem max-pool window lead %.3g (float32 error RMS %.2g)" % (lead64.min().item(), sd))
    return worst


def check_d2l_seed(name, seed, model, x):
    """Raises unless (model, x) meets the rule; called by make_fixtures.py before writing."""
    units, where = d2l_margin(model, x)
    if units < MARGIN:
        raise AssertionError(
            "%s: seed %d is ill-conditioned for train-mode gradients (%s is %.2f float32 error units "
            "from its threshold, the rule asks %g): pick another with /usr/bin/python3 scripts/fixture_margin.py"
            % (name, seed, where, units, MARGIN))
    return units


def main():
    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    import make_fixtures as mf

    ap = argparse.ArgumentParser(description="search d2l_resnet18 fixture seeds that meet the margin rule")
    ap.add_argument("--from", dest="start", type=int, default=86)
    ap.add_argument("--count", type=int, default=1, help="how many qualifying seeds to print")
    args = ap.parse_args()
    torch.set_num_threads(2)
    spec = mf.MODEL_CASES["d2l_resnet18"]
    found, seed = 0, args.start
    while found < args.count:
        # the same draws, in the same order, as make_fixtures.make_model_case
        torch.manual_seed(seed)
        model = spec["build"]()
        mf.randomize_bn(model)
        x = torch.randn(spec["input"])
        units, where = d2l_margin(model, x)
        print("seed %d: %.2f units (%s)%s" % (seed, units, where, "  <- meets the rule" if units >= MARGIN else ""), flush=True)
        found += units >= MARGIN
        seed += 1


if __name__ == "__main__":
    main()
