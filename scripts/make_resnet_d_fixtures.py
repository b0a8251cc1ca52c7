#!/usr/bin/python3
"""PyTorch reference for the ResNet-D shortcut (downsample 'avgpool').

timm is not installed, so its avg_down shortcut (timm/models/resnet.py, downsample_avg) is written
out here in plain torch on top of torchvision's ResNet-50: the first block of a stage that changes
shape gets Sequential(pool, 1x1 conv stride 1 without bias, BatchNorm), where pool is
AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) at stride 2 and Identity at stride 1.
The input is 40x40 so that layer3 and layer4 pool odd sizes (5 -> 3, 3 -> 2: ceil_mode windows
that hang over the edge, averaged over the pixels inside only).

Writes <out>/resnet50_avgdown/{weights.safetensors, input.npy, logits_{eval,train}[_f64].npy, arch.json}
(_f64: PyTorch in float64, rounded to float32 on save).
Run with Debian's /usr/bin/python3 (python3-torch 1.13, python3-torchvision 0.14).
"""
import argparse
import os
import sys

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import randomize_bn, save_npy, write_json, write_safetensors  # noqa: E402


def avg_down(block):
    """Replace a torchvision downsample Sequential(conv1x1(stride), BN) by timm's avg_down form."""
    conv = block.downsample[0]
    stride = conv.stride[0]
    pool = nn.AvgPool2d(2, stride, ceil_mode=True, count_include_pad=False) if stride != 1 else nn.Identity()
    return nn.Sequential(pool, nn.Conv2d(conv.in_channels, conv.out_channels, 1, stride=1, bias=False),
                         nn.BatchNorm2d(conv.out_channels))


def resnet50_avgdown(num_classes):
    model = torchvision.models.resnet50(num_classes=num_classes)
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        layer[0].downsample = avg_down(layer[0])
    for m in model.modules():  # torchvision's init for the new convs and BNs
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="test/fixtures")
    args = ap.parse_args()
    out = os.path.join(args.out, "resnet50_avgdown")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1313)
    model = resnet50_avgdown(num_classes=7)
    randomize_bn(model)
    x = torch.randn(2, 3, 40, 40)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.eval()
    with torch.no_grad():
        logits_eval = model(x)
        model.train()
        logits_train = model(x)
        # The same in float64 (fresh copy of the weights): the reference our float32 is held to.
        m64 = resnet50_avgdown(num_classes=7).double()
        m64.load_state_dict(state)
        m64.eval()
        logits_eval64 = m64(x.double())
        m64.train()
        logits_train64 = m64(x.double())
    write_safetensors(os.path.join(out, "weights.safetensors"), state)
    save_npy(os.path.join(out, "input.npy"), x, "<f4")
    save_npy(os.path.join(out, "logits_eval.npy"), logits_eval, "<f4")
    save_npy(os.path.join(out, "logits_train.npy"), logits_train, "<f4")
    save_npy(os.path.join(out, "logits_eval_f64.npy"), logits_eval64.float(), "<f4")
    save_npy(os.path.join(out, "logits_train_f64.npy"), logits_train64.float(), "<f4")
    write_json(os.path.join(out, "arch.json"), {
        "model": "resnet50", "arch": {"numClasses": 7, "downsample": "avgpool"}, "input": list(x.shape),
        "numParams": sum(p.numel() for p in model.parameters()), "torch": torch.__version__,
        "keys": [k for k in state if ".downsample." in k][:6],
    })


if __name__ == "__main__":
    main()
