#!/usr/bin/python3
"""The PyTorch 1.13 peer of `edgetrain bench`: the same MobileNet v1 stage
(blocks, widths, head: adaptive average pool to min(P, side) + dense),
channels_last, the same threads, batch and optimiser (SGD momentum 0.9,
weight decay 5e-5), random data. Prints the same last line:
images_per_s=<f> gflops=<f> peak_rss_mb=<n>."""
import argparse
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

DW = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512),
      (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024)]


def width(c, alpha):
    return max(1, int(round(c * alpha)))


def conv_bn(cin, cout, k, s, groups=1):
    return [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout), nn.ReLU6(inplace=True)]


class Stage(nn.Module):
    def __init__(self, first, last, alpha, in_ch, size, classes, pool):
        super().__init__()
        layers = []
        side = size
        c = in_ch if first == 1 else width(DW[first - 2][1], alpha)
        if first > 1:
            side = (size + 1) // 2
            for b in range(1, first):
                side = (side - 1) // DW[b - 1][0] + 1
        self.in_shape = (c, side, side)
        flops = 0
        for b in range(first, last + 1):
            if b == 1:
                s = width(32, alpha)
                layers += conv_bn(c, s, 3, 2)
                side = (side + 1) // 2
                flops += side * side * s * 9 * c
                c = s
            stride, out = DW[b - 1]
            layers += conv_bn(c, c, 3, stride, groups=c)
            side = (side - 1) // stride + 1
            o = width(out, alpha)
            layers += conv_bn(c, o, 1, 1)
            flops += side * side * c * 9 + side * side * c * o
            c = o
        self.body = nn.Sequential(*layers)
        self.pool = min(pool, side)
        self.head = nn.Linear(c * self.pool * self.pool, classes)
        flops += c * self.pool * self.pool * classes
        self.train_flops = 3 * 2 * flops

    def forward(self, x):
        x = self.body(x)
        x = F.adaptive_avg_pool2d(x, self.pool)
        return self.head(torch.flatten(x, 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", default="full")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--input", type=int, default=64)
    ap.add_argument("--in-channels", type=int, default=1)
    ap.add_argument("--classes", type=int, default=340)
    ap.add_argument("--head-pool", type=int, default=4)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    if a.stage == "full":
        first, last = 1, 13
    elif a.stage == "block1":
        first, last = 1, 1
    else:
        r = a.stage.split(":")[1].split("-")
        first, last = int(r[0]), int(r[-1])
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = Stage(first, last, a.alpha, a.in_channels, a.input, a.classes, a.head_pool)
    m = m.to(memory_format=torch.channels_last)
    x = torch.rand(a.batch, *m.in_shape)
    x = (x * 2 - 1) if first == 1 else x * 6
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, a.classes, (a.batch,))
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-5)
    print("torch: blocks %d-%d, torch %s, mkldnn %s, threads %d, batch %d, %s"
          % (first, last, torch.__version__, torch.backends.mkldnn.is_available(),
             torch.get_num_threads(), a.batch, torch.__config__.parallel_info().splitlines()[0]))
    total = cpu = 0.0
    for i in range(-1, a.steps):
        c0 = time.process_time()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        opt.step()
        if i >= 0:
            total += time.perf_counter() - t0
            cpu += time.process_time() - c0
    ips = a.batch * a.steps / total
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print("torch: %.1f ms/step, %.1f CPU-ms/step, loss %.3f"
          % (1e3 * total / a.steps, 1e3 * cpu / a.steps, loss.item()))
    print("images_per_s=%.1f gflops=%.1f peak_rss_mb=%d"
          % (ips, ips * m.train_flops / 1e9, rss))


if __name__ == "__main__":
    main()
