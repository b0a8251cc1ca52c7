#!/usr/bin/python3
"""PyTorch goldens for the optimizer, LR-schedule and gradient-clipping tests (test/optim.test.ts).

Writes one small JSON file (default test/optim-fixtures/optim.json). Every case starts from the
same seeded parameters and feeds the optimizer a fixed, seeded sequence of gradients, so the
TypeScript side can replay the exact same inputs and compare the parameters after every step.
Run with Debian's interpreter, which sees python3-torch:

    /usr/bin/python3 scripts/make_optim_fixtures.py [--out test/optim-fixtures/optim.json]
"""
import argparse
import json
import os

import torch

STEPS = 5


def tolist(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def make_params(gen):
    # two tensors so per-parameter state and parameter groups are exercised
    a = torch.randn(3, 4, generator=gen)
    b = torch.randn(5, generator=gen)
    return [a, b]


def make_grads(gen, shapes):
    out = []
    for _ in range(STEPS):
        out.append([torch.randn(*s, generator=gen) * 0.5 for s in shapes])
    return out


def run_optimizer(kind, kwargs, init, grads, groups=None):
    params = [torch.nn.Parameter(p.clone()) for p in init]
    if groups is None:
        opt = getattr(torch.optim, kind)(params, **kwargs)
    else:
        gs = [dict(g, params=[params[i] for i in g['params']]) for g in groups]
        opt = getattr(torch.optim, kind)(gs, **kwargs)
    history = []
    for step in range(STEPS):
        opt.zero_grad()
        for p, g in zip(params, grads[step]):
            p.grad = g.clone()
        opt.step()
        history.append([tolist(p) for p in params])
    return history


def sched_case(name, make, steps, optimizer_kwargs=None, base_lr=0.1):
    p = torch.nn.Parameter(torch.zeros(1))
    kw = {'lr': base_lr, 'momentum': 0.9}
    kw.update(optimizer_kwargs or {})
    opt = torch.optim.SGD([p], **kw)
    sched = make(opt)
    lrs, moms = [], []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]['lr'])
        moms.append(opt.param_groups[0]['momentum'])
        opt.step()
        sched.step()
    return {'name': name, 'baseLr': base_lr, 'lrs': lrs, 'momentums': moms}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default=os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'optim-fixtures', 'optim.json')))
    args = ap.parse_args()
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1234)
    init = make_params(gen)
    shapes = [list(p.shape) for p in init]
    grads = make_grads(gen, shapes)

    cases = []

    def add(name, kind, kwargs, groups=None):
        cases.append({'name': name, 'optimizer': kind, 'kwargs': kwargs, 'groups': groups,
                      'history': run_optimizer(kind, kwargs, init, grads, groups)})

    add('sgd_plain', 'SGD', {'lr': 0.1})
    add('sgd_momentum', 'SGD', {'lr': 0.1, 'momentum': 0.9})
    add('sgd_momentum_dampening_wd', 'SGD', {'lr': 0.05, 'momentum': 0.8, 'dampening': 0.3, 'weight_decay': 0.01})
    add('sgd_nesterov_wd', 'SGD', {'lr': 0.1, 'momentum': 0.9, 'nesterov': True, 'weight_decay': 5e-4})
    add('sgd_wd_only', 'SGD', {'lr': 0.2, 'weight_decay': 0.1})
    add('adam', 'Adam', {'lr': 0.01})
    add('adam_wd_betas', 'Adam', {'lr': 0.02, 'betas': (0.8, 0.95), 'eps': 1e-6, 'weight_decay': 0.05})
    add('adamw', 'AdamW', {'lr': 0.01, 'weight_decay': 0.1})
    add('sgd_groups', 'SGD', {'lr': 0.1, 'momentum': 0.9, 'weight_decay': 1e-3},
        groups=[{'params': [0]}, {'params': [1], 'lr': 1.0, 'weight_decay': 0.0}])
    add('adamw_groups', 'AdamW', {'lr': 0.01, 'weight_decay': 0.05},
        groups=[{'params': [0], 'lr': 0.001}, {'params': [1], 'weight_decay': 0.0}])

    S = torch.optim.lr_scheduler
    schedules = [
        sched_case('step', lambda o: S.StepLR(o, step_size=3, gamma=0.5), 10),
        sched_case('multistep', lambda o: S.MultiStepLR(o, milestones=[2, 5, 6], gamma=0.1), 10),
        sched_case('cosine', lambda o: S.CosineAnnealingLR(o, T_max=8, eta_min=0.001), 9),
        sched_case('linear_warmup', lambda o: S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=4), 8),
        sched_case('onecycle', lambda o: S.OneCycleLR(o, max_lr=0.4, total_steps=12), 12),
        sched_case('onecycle_linear_3phase', lambda o: S.OneCycleLR(o, max_lr=0.3, total_steps=15, pct_start=0.25,
                                                                   anneal_strategy='linear', div_factor=10.0,
                                                                   final_div_factor=100.0, three_phase=True), 15),
        sched_case('warmup_then_cosine', lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.25, total_iters=3),
                                                                     S.CosineAnnealingLR(o, T_max=7)], milestones=[3]), 10),
    ]

    # global-norm gradient clipping
    clip = []
    for max_norm, norm_type in [(1.0, 2.0), (100.0, 2.0), (0.5, float('inf'))]:
        ps = [torch.nn.Parameter(p.clone()) for p in init]
        for p, g in zip(ps, grads[0]):
            p.grad = g.clone() * 3
        total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type=norm_type)
        clip.append({'maxNorm': max_norm, 'normType': 'inf' if norm_type == float('inf') else norm_type,
                     'gradsIn': [tolist(g * 3) for g in grads[0]],
                     'gradsOut': [tolist(p.grad) for p in ps], 'totalNorm': float(total)})

    out = {
        'generator': 'scripts/make_optim_fixtures.py', 'torch': torch.__version__, 'steps': STEPS,
        'init': [tolist(p) for p in init], 'shapes': shapes,
        'grads': [[tolist(g) for g in step] for step in grads],
        'cases': cases, 'schedules': schedules, 'clip': clip,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')
    os.replace(tmp, args.out)
    print(f'wrote {args.out} ({os.path.getsize(args.out)} bytes): {len(cases)} optimizer cases, '
          f'{len(schedules)} schedules, {len(clip)} clipping cases')


if __name__ == '__main__':
    main()
