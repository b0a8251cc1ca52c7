#!/usr/bin/env python3
"""Train a resnet-ts CIFAR ResNet with PyTorch's DistributedDataParallel, from a .pth and back.

The far half of the round trip in the README's "When one machine is not enough":

    resnet convert w.safetensors init.pth          # or writePth() from the library
    torchrun --standalone --nproc_per_node 2 scripts/ddp_train.py --init init.pth --out trained.pth
    resnet forward --model cifar_resnet8 --arch '{"inChannels":1}' --weights trained.pth ...

Each process trains the same model (key names are resnet-ts's cifar_resnet<depth>, which mirror
torchvision's) on its shard of Fashion-MNIST (DistributedSampler; gloo backend, CPU); DDP averages
the gradients. Rank 0 then writes the weights with torch.save (the state_dict) and, with
--eval-out, the first --eval-images test images (normalised, float32 .npy), their labels and
PyTorch's eval-mode logits, for the caller to compare with resnet-ts. Run with Debian's PyTorch.
"""
import argparse, gzip, os, sys
import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST's, as resnet-ts normalises it ('dataset')


class Block(nn.Module):
    """He et al. 2015 CIFAR BasicBlock, option-A shortcut (subsample by 2, zero-pad channels)."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = (planes - cin) // 2 if stride != 1 or cin != planes else None

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        sc = x if self.pad is None else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
        return F.relu(y + sc)


class CifarResNet(nn.Module):
    def __init__(self, depth, in_channels=1, num_classes=10, width=16):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        cin = width
        for i, (planes, stride) in enumerate([(width, 1), (2 * width, 2), (4 * width, 2)], 1):
            blocks = []
            for b in range(n):
                blocks.append(Block(cin, planes, stride if b == 0 else 1))
                cin = planes
            setattr(self, f'layer{i}', nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


def idx(path):
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def images(data_dir, split, limit):
    x = idx(os.path.join(data_dir, f'{split}-images-idx3-ubyte.gz'))[:limit]
    y = idx(os.path.join(data_dir, f'{split}-labels-idx1-ubyte.gz'))[:limit]
    x = ((x.astype(np.float32) / 255 - np.float32(MEAN)) / np.float32(STD))[:, None]
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--init', required=True, help='starting weights (.pth state dict)')
    ap.add_argument('--out', required=True, help='where rank 0 writes the trained state dict (.pth)')
    ap.add_argument('--depth', type=int, default=8)
    ap.add_argument('--data-dir', default='/usr/share/datasets/fashion-mnist')
    ap.add_argument('--train-images', type=int, default=512, help='first N training images, sharded over the processes')
    ap.add_argument('--batch-size', type=int, default=32, help='per process')
    ap.add_argument('--epochs', type=int, default=1)
    ap.add_argument('--lr', type=float, default=0.05)
    ap.add_argument('--eval-images', type=int, default=64)
    ap.add_argument('--eval-out', help='folder for x.npy, labels.npy, logits.npy (rank 0)')
    a = ap.parse_args()

    torch.set_num_threads(1)  # one core per process
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = CifarResNet(a.depth)
    model.load_state_dict(torch.load(a.init, weights_only=True), strict=True)
    ddp = DDP(model)
    x, y = images(a.data_dir, 'train', a.train_images)
    sampler = DistributedSampler(TensorDataset(x, y), num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(TensorDataset(x, y), batch_size=a.batch_size, sampler=sampler, drop_last=True)
    opt = torch.optim.SGD(ddp.parameters(), lr=a.lr, momentum=0.9)
    steps = 0
    for epoch in range(a.epochs):
        sampler.set_epoch(epoch)
        ddp.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = F.cross_entropy(ddp(xb), yb)
            loss.backward()
            opt.step()
            steps += 1
            if rank == 0:
                print(f'epoch {epoch} step {steps} loss {loss.item():.4f}', flush=True)
    if rank == 0:
        torch.save(model.state_dict(), a.out)
        if a.eval_out:
            os.makedirs(a.eval_out, exist_ok=True)
            xt, yt = images(a.data_dir, 't10k', a.eval_images)
            model.eval()
            with torch.no_grad():
                logits = model(xt)
            np.save(os.path.join(a.eval_out, 'x.npy'), xt.numpy())
            np.save(os.path.join(a.eval_out, 'labels.npy'), yt.numpy().astype(np.float32))
            np.save(os.path.join(a.eval_out, 'logits.npy'), logits.numpy())
            acc = (logits.argmax(1) == yt).float().mean().item()
            print(f'rank 0 of {world}: {steps} steps, test accuracy on {len(yt)} images {acc:.4f}; wrote {a.out}', flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    sys.exit(main())
