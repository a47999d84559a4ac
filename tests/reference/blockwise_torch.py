#!/usr/bin/python3
"""PyTorch peer of `edgetrain train`: the same MobileNet v1 blocks, stages,
heads (adaptive average pool to P x P + dense), optimiser (Adam), one-cycle
schedule, augmentation (random shift with background fill, horizontal flip)
and normalisation, trained block-wise (each stage on its own head, on the
detached output of the previous stage) or end to end.

  /usr/bin/python3 tests/reference/blockwise_torch.py --epochs 15 ...

Prints one line per epoch and finally test_accuracy=<h1>,<h2>,... like the C
trainer, so both can be compared head by head.  Needs Debian's python3-torch;
the project's tests do not run it."""
import argparse, gzip, math, os, struct, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# (stride, out channels at alpha 1) of MobileNet v1's depthwise-separable
# layers dw1..dw13 = blocks 1..13; block 1 also holds the 3x3/2 stem (32).
DW = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512),
      (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024)]


def width(c, alpha):
    return max(1, int(math.floor(c * alpha + 0.5)))


def conv_bn(cin, cout, k, stride, groups=1):
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU6(inplace=True)]


def make_stage(first, last, alpha, cin, classes, pool, side):
    layers = []
    c = cin
    for b in range(first, last + 1):
        if b == 1:
            layers += conv_bn(c, width(32, alpha), 3, 2)
            c = width(32, alpha)
            side = (side + 1) // 2
        stride, out = DW[b - 1]
        layers += conv_bn(c, c, 3, stride, groups=c)
        side = (side - 1) // stride + 1
        layers += conv_bn(c, width(out, alpha), 1, 1)
        c = width(out, alpha)
    p = min(pool, side)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(p), nn.Flatten(),
                         nn.Linear(p * p * c, classes))
    return nn.Sequential(*layers), head, c, side


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    magic, n = struct.unpack(">II", data[:8])
    if magic == 0x803:
        h, w = struct.unpack(">II", data[8:16])
        return np.frombuffer(data, np.uint8, n * h * w, 16).reshape(n, h, w)
    return np.frombuffer(data, np.uint8, n, 8)


def resize(x, size):
    """uint8 (N,H,W) -> float (N,1,size,size) in [0,1]: area when shrinking,
    bilinear (half-pixel centres) when enlarging, as batch.c does."""
    t = torch.from_numpy(x.astype(np.float32)).unsqueeze(1)
    if x.shape[1] != size:
        mode = "area" if size < x.shape[1] else "bilinear"
        t = F.interpolate(t, size=(size, size), mode=mode,
                          **({} if mode == "area" else {"align_corners": False}))
        t = (t + 0.5).floor().clamp(0, 255)     # batch.c rounds to uint8
    return t / 255.0


def augment(x, shift, flip, gen):
    n, _, h, w = x.shape
    if shift:
        xp = F.pad(x, (shift,) * 4)             # background = 0 before norm
        dx = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        dy = torch.randint(0, 2 * shift + 1, (n,), generator=gen)
        x = torch.stack([xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
                         for i in range(n)])
    if flip:
        m = torch.rand(n, generator=gen) < 0.5
        x = torch.where(m[:, None, None, None], x.flip(3), x)
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--mode", default="blockwise", choices=["blockwise", "e2e"])
    ap.add_argument("--stages", default="1,2-3,4-5,6-11,12-13")
    ap.add_argument("--input", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--head-pool", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=0.004)
    ap.add_argument("--pct-start", type=float, default=0.25)
    ap.add_argument("--div-factor", type=float, default=25.0)
    ap.add_argument("--final-div", type=float, default=1e3)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--shift", type=int, default=2)
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--test-limit", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(a.seed)

    f = lambda n: next(os.path.join(a.data, n + s) for s in ("", ".gz")
                       if os.path.exists(os.path.join(a.data, n + s)))
    xtr = read_idx(f("train-images-idx3-ubyte"))
    ytr = read_idx(f("train-labels-idx1-ubyte"))
    xte = read_idx(f("t10k-images-idx3-ubyte"))
    yte = read_idx(f("t10k-labels-idx1-ubyte"))
    if a.train_limit:
        xtr, ytr = xtr[:a.train_limit], ytr[:a.train_limit]
    if a.test_limit:
        xte, yte = xte[:a.test_limit], yte[:a.test_limit]
    mean, std = xtr.mean() / 255.0, xtr.std() / 255.0
    Xtr, Xte = resize(xtr, a.input), resize(xte, a.input)
    Ytr, Yte = torch.from_numpy(ytr.astype(np.int64)), torch.from_numpy(yte.astype(np.int64))
    classes = int(max(ytr.max(), yte.max())) + 1

    ranges = []
    for part in a.stages.split(","):
        lo, _, hi = part.partition("-")
        ranges.append((int(lo), int(hi or lo)))
    if a.mode == "e2e":
        ranges = [(ranges[0][0], ranges[-1][1])]
    stages, heads = [], []
    c, side = 1, a.input
    for lo, hi in ranges:
        body, head, c, side = make_stage(lo, hi, a.alpha, c, classes, a.head_pool, side)
        stages.append(body.to(memory_format=torch.channels_last))
        heads.append(head)
    steps = len(Xtr) // a.batch
    opts, scheds = [], []
    for s, h in zip(stages, heads):
        o = torch.optim.Adam(list(s.parameters()) + list(h.parameters()),
                             lr=a.lr, weight_decay=a.weight_decay)
        opts.append(o)
        scheds.append(torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=a.lr, total_steps=steps * a.epochs, pct_start=a.pct_start,
            div_factor=a.div_factor, final_div_factor=a.final_div,
            anneal_strategy="cos", cycle_momentum=False))
    print(f"torch {torch.__version__} {a.mode}: stages {ranges}, input {a.input}, "
          f"alpha {a.alpha}, head pool {a.head_pool}, batch {a.batch}, "
          f"{a.epochs} epochs x {steps} steps, {a.threads} threads", flush=True)
    accs = []
    for epoch in range(a.epochs):
        for m in stages + heads:
            m.train()
        t0 = time.time()
        perm = torch.randperm(len(Xtr), generator=gen)
        for i in range(steps):
            idx = perm[i * a.batch:(i + 1) * a.batch]
            x = augment(Xtr[idx], a.shift, not a.no_flip, gen)
            x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
            y = Ytr[idx]
            for s, h, o, sc in zip(stages, heads, opts, scheds):
                out = s(x)
                loss = F.cross_entropy(h(out), y)
                o.zero_grad(set_to_none=True)
                loss.backward()
                o.step()
                sc.step()
                x = out.detach()
        train_s = time.time() - t0
        for m in stages + heads:
            m.eval()
        correct = [0] * len(stages)
        with torch.no_grad():
            for i in range(0, len(Xte), 500):
                x = ((Xte[i:i + 500] - mean) / std).contiguous(memory_format=torch.channels_last)
                for k, (s, h) in enumerate(zip(stages, heads)):
                    x = s(x)
                    correct[k] += (h(x).argmax(1) == Yte[i:i + 500]).sum().item()
        accs = [cc / len(Xte) for cc in correct]
        print(f"epoch {epoch + 1}/{a.epochs}: {train_s:.1f}s train "
              f"({steps * a.batch / train_s:.0f} img/s); test top-1 "
              + " ".join(f"{v:.4f}" for v in accs), flush=True)
    print("test_accuracy=" + ",".join(f"{v:.4f}" for v in accs))


if __name__ == "__main__":
    main()
