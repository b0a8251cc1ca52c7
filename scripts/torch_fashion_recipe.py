# PyTorch reference for the fashion-mnist-28 recipe: the same CIFAR ResNet (option A, 1 channel), SGD nesterov +
# one-cycle, random crop (pad 2) + flip, label smoothing, with optional EMAs of the weights evaluated beside the
# weights each epoch. Usage: /usr/bin/python3 scripts/torch_fashion_recipe.py --threads 2 --n 3 --ema 0.99,0.998
import gzip, math, sys, time, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
import argparse, copy
ap = argparse.ArgumentParser()
ap.add_argument('--threads', type=int, default=1); ap.add_argument('--epochs', type=int, default=10)
ap.add_argument('--n', type=int, default=3); ap.add_argument('--wd', type=float, default=5e-4)
ap.add_argument('--lr', type=float, default=0.2); ap.add_argument('--bs', type=int, default=128)
ap.add_argument('--pct', type=float, default=0.15); ap.add_argument('--ls', type=float, default=0.1)
ap.add_argument('--ema', type=str, default='0.99,0.998'); ap.add_argument('--noflip', action='store_true')
# --erase P: torchvision RandomErasing(p=P, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0) after normalization;
# --width W: stage widths W, 2W, 4W (16 is He et al.'s); test accuracy is also printed with flip TTA (mean of logits).
ap.add_argument('--erase', type=float, default=0); ap.add_argument('--width', type=int, default=16)
A = ap.parse_args(); print(A, flush=True)
torch.set_num_threads(A.threads)
EPOCHS = A.epochs
torch.manual_seed(0)
D = '/usr/share/datasets/fashion-mnist/'
def idx(p, off):
    return np.frombuffer(gzip.open(D + p).read(), np.uint8, offset=off)
Xtr = torch.tensor(idx('train-images-idx3-ubyte.gz', 16).reshape(-1, 1, 28, 28).copy()).float() / 255
Ytr = torch.tensor(idx('train-labels-idx1-ubyte.gz', 8).astype(np.int64))
Xte = torch.tensor(idx('t10k-images-idx3-ubyte.gz', 16).reshape(-1, 1, 28, 28).copy()).float() / 255
Yte = torch.tensor(idx('t10k-labels-idx1-ubyte.gz', 8).astype(np.int64))
M, S = 0.2860, 0.3530
Xtr = (Xtr - M) / S; Xte = (Xte - M) / S
class Block(nn.Module):
    def __init__(s, i, o, st):
        super().__init__()
        s.conv1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.bn1 = nn.BatchNorm2d(o)
        s.conv2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.bn2 = nn.BatchNorm2d(o)
        s.st = st; s.pad = (o - i) // 2 if (st != 1 or i != o) else -1
    def forward(s, x):
        y = F.relu(s.bn1(s.conv1(x))); y = s.bn2(s.conv2(y))
        sc = x if s.pad < 0 else F.pad(x[:, :, ::s.st, ::s.st], (0, 0, 0, 0, s.pad, s.pad))
        return F.relu(y + sc)
class Net(nn.Module):
    def __init__(s, n=3, w=16):
        super().__init__()
        s.conv1 = nn.Conv2d(1, w, 3, 1, 1, bias=False); s.bn1 = nn.BatchNorm2d(w)
        L = []
        for i, o, st in [(w, w, 1), (w, 2 * w, 2), (2 * w, 4 * w, 2)]:
            L.append(nn.Sequential(Block(i, o, st), *[Block(o, o, 1) for _ in range(n - 1)]))
        s.layers = nn.Sequential(*L); s.fc = nn.Linear(4 * w, 10)
        for m in s.modules():
            if isinstance(m, nn.Conv2d): nn.init.kaiming_normal_(m.weight)
    def forward(s, x):
        x = F.relu(s.bn1(s.conv1(x))); x = s.layers(x)
        return s.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
net = Net(A.n, A.width)
emas = [(float(d), copy.deepcopy(net)) for d in A.ema.split(',') if d]
step = 0
B = A.bs; steps = math.ceil(60000 / B) * EPOCHS
decay, no_decay = [], []
for n_, p in net.named_parameters(): (no_decay if p.ndim <= 1 else decay).append(p)
opt = torch.optim.SGD([{'params': decay, 'weight_decay': A.wd}, {'params': no_decay, 'weight_decay': 0}], lr=A.lr, momentum=0.9, nesterov=True)
sch = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=A.lr, total_steps=steps, pct_start=A.pct)
bg = -M / S
def augment(x):
    n = x.shape[0]
    p = F.pad(x, (2, 2, 2, 2), value=bg)
    out = torch.empty_like(x)
    ty = torch.randint(0, 5, (n,)); tx = torch.randint(0, 5, (n,)); fl = torch.rand(n) < 0.5
    for i in range(n):
        c = p[i, :, ty[i]:ty[i] + 28, tx[i]:tx[i] + 28]
        out[i] = c.flip(-1) if (fl[i] and not A.noflip) else c
        if A.erase > 0 and torch.rand(1).item() < A.erase: erase(out[i])
    return out
def erase(img):  # torchvision's RandomErasing.get_params, value 0, in place on a 1x28x28 view
    area = 28 * 28
    for _ in range(10):
        ea = area * (0.02 + torch.rand(1).item() * (0.33 - 0.02))
        ar = math.exp(math.log(0.3) + torch.rand(1).item() * (math.log(3.3) - math.log(0.3)))
        h = int(round(math.sqrt(ea * ar))); w = int(round(math.sqrt(ea / ar)))
        if h < 28 and w < 28:
            i = torch.randint(0, 28 - h + 1, (1,)).item(); j = torch.randint(0, 28 - w + 1, (1,)).item()
            img[:, i:i + h, j:j + w] = 0; return
for ep in range(EPOCHS):
    t0 = time.time(); net.train(); perm = torch.randperm(60000); tl = tc = 0
    for b in range(0, 60000, B):
        ix = perm[b:b + B]; x = augment(Xtr[ix]); y = Ytr[ix]
        out = net(x); loss = F.cross_entropy(out, y, label_smoothing=A.ls)
        opt.zero_grad(); loss.backward(); opt.step(); sch.step(); step += 1
        with torch.no_grad():
            for d, e in emas:
                dt = min(d, (1 + step) / (10 + step))
                for pe, pn in zip(e.state_dict().values(), net.state_dict().values()):
                    if pe.dtype.is_floating_point: pe.mul_(dt).add_(pn, alpha=1 - dt)
                    else: pe.copy_(pn)
        tl += loss.item() * len(ix); tc += (out.argmax(1) == y).sum().item()
    def ev(m, tta=False):
        m.eval(); c = 0
        with torch.no_grad():
            for b in range(0, 10000, 500):
                x = Xte[b:b + 500]; o = m(x)
                if tta: o = (o + m(x.flip(-1))) / 2
                c += (o.argmax(1) == Yte[b:b + 500]).sum().item()
        return c
    c = ev(net); es = ' '.join(f'ema{d} {ev(e) / 10000:.4f} tta {ev(e, True) / 10000:.4f}' for d, e in emas)
    es = f'tta {ev(net, True) / 10000:.4f} ' + es
    print(f'epoch {ep + 1} train_loss {tl / 60000:.4f} train_acc {tc / 60000:.4f} test_acc {c / 10000:.4f} {es} time {time.time() - t0:.0f}s', flush=True)
