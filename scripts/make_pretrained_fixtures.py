#!/usr/bin/python3
"""Fixtures for the pretrained-weights tests (test/pretrained-http.test.ts), made with Debian's
PyTorch 1.13 / torchvision 0.14 (run with /usr/bin/python3):

- resnet18-<sha8>.pth: torchvision's resnet18 with seeded random weights and BatchNorm statistics,
  saved as torch.save(state_dict) and named as torchvision names its files (SHA-256 prefix);
- pre_<photo>.npy: ResNet18_Weights.IMAGENET1K_V1.transforms() (resize 256, crop 224) and
  ResNet50_Weights.IMAGENET1K_V2.transforms() (resize 232) applied to the PIL images of a real
  JPEG (skimage's rocket.jpg) and a real PNG (skimage's chelsea.png), exactly as a user does;
- logits.npy, pool.npy, layer2.npy: the model's logits, pooled features (what fc sees) and layer2
  output for the two V1-preprocessed photos, batch [rocket, chelsea];
- manifest.json: the file name, its full SHA-256 and size, and the photos' top-5 classes.

Usage: /usr/bin/python3 scripts/make_pretrained_fixtures.py --photos DIR --out test/fixtures/pretrained
"""
import argparse, hashlib, json, os

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.models import ResNet18_Weights, ResNet50_Weights

ap = argparse.ArgumentParser()
ap.add_argument('--photos', required=True)
ap.add_argument('--out', required=True)
a = ap.parse_args()
os.makedirs(a.out, exist_ok=True)

torch.manual_seed(0)
m = torchvision.models.resnet18()
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.weight.uniform_(0.5, 1.5)
            mod.bias.normal_(0, 0.1)
            mod.running_mean.normal_(0, 0.1)
            mod.running_var.uniform_(0.5, 1.5)
m.eval()
for f in os.listdir(a.out):
    if f.startswith('resnet18-') and f.endswith('.pth'):
        os.remove(os.path.join(a.out, f))
tmp = os.path.join(a.out, 'resnet18.tmp')
torch.save(m.state_dict(), tmp)
data = open(tmp, 'rb').read()
sha = hashlib.sha256(data).hexdigest()
name = f'resnet18-{sha[:8]}.pth'
os.replace(tmp, os.path.join(a.out, name))

photos = ['rocket.jpg', 'chelsea.png']
pre = {}
for p in photos:
    img = Image.open(os.path.join(a.photos, p)).convert('RGB')
    stem = p.split('.')[0]
    pre[stem] = ResNet18_Weights.IMAGENET1K_V1.transforms()(img)
    np.save(os.path.join(a.out, f'pre_{stem}.npy'), pre[stem].numpy().astype(np.float32))
    np.save(os.path.join(a.out, f'pre232_{stem}.npy'), ResNet50_Weights.IMAGENET1K_V2.transforms()(img).numpy().astype(np.float32))

x = torch.stack([pre['rocket'], pre['chelsea']])
feats = {}
m.layer2.register_forward_hook(lambda mod, i, o: feats.__setitem__('layer2', o))
m.avgpool.register_forward_hook(lambda mod, i, o: feats.__setitem__('pool', torch.flatten(o, 1)))
with torch.no_grad():
    logits = m(x)
np.save(os.path.join(a.out, 'logits.npy'), logits.numpy().astype(np.float32))
np.save(os.path.join(a.out, 'pool.npy'), feats['pool'].numpy().astype(np.float32))
np.save(os.path.join(a.out, 'layer2.npy'), feats['layer2'].numpy().astype(np.float32))
top5 = torch.topk(logits, 5, dim=1).indices.tolist()
json.dump({'file': name, 'sha256': sha, 'size': len(data), 'photos': ['rocket', 'chelsea'], 'top5': top5,
           'torch': torch.__version__, 'torchvision': torchvision.__version__}, open(os.path.join(a.out, 'manifest.json'), 'w'), indent=1)
print(f'wrote {a.out}: {name} ({len(data)} bytes), preprocessed photos, logits/pool/layer2')
