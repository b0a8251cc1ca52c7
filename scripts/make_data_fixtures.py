#!/usr/bin/python3
"""Reference outputs of torchvision transforms for test/data-transforms.test.ts.

Run with Debian's python3 (python3-torch 1.13, python3-torchvision 0.14):

    /usr/bin/python3 scripts/make_data_fixtures.py

Writes test/data-fixtures/transforms.npz (committed; a few hundred KB). Inputs: the first image of
the embedded Fashion-MNIST test slice (uint8 and /255 float) and a seeded random 3x23x37 float image.
"""
import gzip
import os

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
import torchvision.transforms.functional as TF

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with gzip.open(os.path.join(root, "data/fashion-mnist-slice/t10k-images-idx3-ubyte.gz")) as f:
    raw = f.read()
fm_u8 = torch.frombuffer(bytearray(raw[16 : 16 + 784]), dtype=torch.uint8).reshape(1, 28, 28)
fm = fm_u8.float() / 255
g = torch.Generator().manual_seed(0)
rgb = torch.rand(3, 23, 37, generator=g)

def interp(x, size, aa):
    return F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=aa)[0]

out = {
    "fm_u8": fm_u8,
    "fm": fm,
    "rgb": rgb,
    # F.interpolate, bilinear, align_corners=False
    "fm_up96": interp(fm, (96, 96), False),
    "fm_up96_aa": interp(fm, (96, 96), True),
    "fm_down17x11": interp(fm, (17, 11), False),
    "fm_down17x11_aa": interp(fm, (17, 11), True),
    "rgb_31x50": interp(rgb, (31, 50), False),
    "rgb_9x40_aa": interp(rgb, (9, 40), True),
    "rgb_nearest_10x50": F.interpolate(rgb[None], size=(10, 50), mode="nearest")[0],
    # torchvision transforms (tensor path)
    "rgb_Resize16_aa": T.Resize(16, antialias=True)(rgb),
    "rgb_Resize16_noaa": T.Resize(16, antialias=False)(rgb),
    "fm_u8_Resize96": T.Resize(96, antialias=False)(fm_u8),
    "fm_u8_Resize20": T.Resize(20, antialias=False)(fm_u8),
    "rgb_CenterCrop15": T.CenterCrop(15)(rgb),
    "rgb_CenterCrop14x20": T.CenterCrop((14, 20))(rgb),
    "rgb_CenterCrop40": T.CenterCrop(40)(rgb),
    "rgb_resized_crop": TF.resized_crop(rgb, 3, 5, 12, 20, [24, 24], antialias=True),
    "rgb_gray": TF.rgb_to_grayscale(rgb, num_output_channels=1),
    "rgb_pad_reflect": TF.pad(rgb, [3, 2, 4, 1], padding_mode="reflect"),
    "rgb_pad_symmetric": TF.pad(rgb, [3, 2, 4, 1], padding_mode="symmetric"),
    "rgb_pad_edge": TF.pad(rgb, [3, 2, 4, 1], padding_mode="edge"),
    "rgb_pad_const": TF.pad(rgb, [3, 2, 4, 1], fill=0.5),
    "rgb_hflip": TF.hflip(rgb),
    "rgb_normalize": TF.normalize(rgb, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}
os.makedirs(os.path.join(root, "test/data-fixtures"), exist_ok=True)
path = os.path.join(root, "test/data-fixtures/transforms.npz")
np.savez_compressed(path, **{k: v.contiguous().numpy() for k, v in out.items()})
print("wrote", path, os.path.getsize(path), "bytes; torch", torch.__version__, "torchvision", torchvision.__version__)
