#!/usr/bin/python3
"""Writes the PyTorch 1.13 reference vectors the kernels tests compare with.

Run with Debian's python3-torch:  /usr/bin/python3 tests/golden/gen_golden.py
Outputs (committed, small): tests/golden/layers.bin, stage_1_3.bin,
stage_2_4.bin. The C tests read them without torch.

File format (little-endian): b"ETGOLD1\\n", u32 count, then per tensor
u32 name length, name bytes, u32 ndim, u32 dims[ndim], f32 data. Tensors
are stored in edgetrain's layouts: activations NHWC, stem weight
(Cout,3,3,Cin), depthwise (3,3,C), pointwise (Cout,Cin), head weight
(classes, P*P*C) with features in (py,px,c) order.
"""
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_num_threads(1)
OUT = os.path.dirname(os.path.abspath(__file__))


class Golden:
    def __init__(self):
        self.items = []

    def add(self, name, t):
        t = t.detach().to(torch.float32).contiguous()
        self.items.append((name, list(t.shape), t.flatten().tolist()))

    def write(self, fname):
        with open(os.path.join(OUT, fname), "wb") as f:
            f.write(b"ETGOLD1\n")
            f.write(struct.pack("<I", len(self.items)))
            for name, shape, data in self.items:
                nb = name.encode()
                f.write(struct.pack("<I", len(nb)) + nb)
                f.write(struct.pack("<I", len(shape)))
                f.write(struct.pack("<%dI" % len(shape), *shape))
                f.write(struct.pack("<%df" % len(data), *data))
        print("wrote", fname, len(self.items), "tensors")


def nhwc(t):
    return t.permute(0, 2, 3, 1)


def stem_w(w):      # (Cout,Cin,3,3) -> (Cout,3,3,Cin)
    return w.permute(0, 2, 3, 1)


def dw_w(w):        # (C,1,3,3) -> (3,3,C)
    return w[:, 0].permute(1, 2, 0)


def pw_w(w):        # (Cout,Cin,1,1) -> (Cout,Cin)
    return w[:, :, 0, 0]


def head_w(w, c, p):  # (K, C*P*P) -> (K, P*P*C)
    return w.view(w.shape[0], c, p, p).permute(0, 2, 3, 1).reshape(w.shape[0], -1)


def layers():
    g = Golden()
    # stem conv, Cin 1 and 3: x (2,7,6,Cin) NHWC, w (4,Cin,3,3)
    for cin in (1, 3):
        x = torch.randn(2, cin, 7, 6)
        w = torch.randn(4, cin, 3, 3, requires_grad=True)
        y = F.conv2d(x, w, stride=2, padding=1)
        dy = torch.randn_like(y)
        y.backward(dy)
        p = "stem%d." % cin
        g.add(p + "x", nhwc(x)); g.add(p + "w", stem_w(w))
        g.add(p + "y", nhwc(y)); g.add(p + "dy", nhwc(dy))
        g.add(p + "dw", stem_w(w.grad))
    # depthwise, stride 1 and 2: x (2,5,6,3)
    for s in (1, 2):
        x = torch.randn(2, 3, 5, 6, requires_grad=True)
        w = torch.randn(3, 1, 3, 3, requires_grad=True)
        y = F.conv2d(x, w, stride=s, padding=1, groups=3)
        dy = torch.randn_like(y)
        y.backward(dy)
        p = "dw%d." % s
        g.add(p + "x", nhwc(x)); g.add(p + "w", dw_w(w))
        g.add(p + "y", nhwc(y)); g.add(p + "dy", nhwc(dy))
        g.add(p + "dx", nhwc(x.grad)); g.add(p + "dw", dw_w(w.grad))
    # pointwise: x (2,3,4,5) -> 7 channels
    x = torch.randn(2, 5, 3, 4, requires_grad=True)
    w = torch.randn(7, 5, 1, 1, requires_grad=True)
    y = F.conv2d(x, w)
    dy = torch.randn_like(y)
    y.backward(dy)
    g.add("pw.x", nhwc(x)); g.add("pw.w", pw_w(w)); g.add("pw.y", nhwc(y))
    g.add("pw.dy", nhwc(dy)); g.add("pw.dx", nhwc(x.grad))
    g.add("pw.dw", pw_w(w.grad))
    # batch norm (training) + ReLU6: x (2,3,3,4) channels 3
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([2.5, 1.5, 3.0]))
        bn.bias.copy_(torch.tensor([3.0, 2.0, 0.5]))
        bn.running_mean.copy_(torch.tensor([0.1, -0.2, 0.3]))
        bn.running_var.copy_(torch.tensor([1.0, 2.0, 0.5]))
    g.add("bn.rmean0", bn.running_mean); g.add("bn.rvar0", bn.running_var)
    x = (torch.randn(2, 3, 3, 4) * 2 + 0.5).requires_grad_()
    y = F.relu6(bn(x))
    dy = torch.randn_like(y)
    y.backward(dy)
    g.add("bn.x", nhwc(x)); g.add("bn.gamma", bn.weight); g.add("bn.beta", bn.bias)
    g.add("bn.y", nhwc(y)); g.add("bn.dy", nhwc(dy)); g.add("bn.dx", nhwc(x.grad))
    g.add("bn.dgamma", bn.weight.grad); g.add("bn.dbeta", bn.bias.grad)
    g.add("bn.rmean", bn.running_mean); g.add("bn.rvar", bn.running_var)
    bn.eval()
    g.add("bn.y_eval", nhwc(F.relu6(bn(x))))
    # adaptive average pooling, P 1 and 3 on 5x7
    for p_ in (1, 3):
        x = torch.randn(2, 3, 5, 7, requires_grad=True)
        y = F.adaptive_avg_pool2d(x, p_)
        dy = torch.randn_like(y)
        y.backward(dy)
        p = "pool%d." % p_
        g.add(p + "x", nhwc(x)); g.add(p + "y", nhwc(y))
        g.add(p + "dy", nhwc(dy)); g.add(p + "dx", nhwc(x.grad))
    # dense: (3,8) -> 5
    x = torch.randn(3, 8, requires_grad=True)
    lin = nn.Linear(8, 5)
    y = lin(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    g.add("dense.x", x); g.add("dense.w", lin.weight); g.add("dense.b", lin.bias)
    g.add("dense.y", y); g.add("dense.dy", dy); g.add("dense.dx", x.grad)
    g.add("dense.dw", lin.weight.grad); g.add("dense.db", lin.bias.grad)
    # softmax cross-entropy: (4,5)
    z = (torch.randn(4, 5) * 2).requires_grad_()
    lab = torch.tensor([0, 3, 4, 2])
    loss = F.cross_entropy(z, lab)
    loss.backward()
    g.add("xent.logits", z); g.add("xent.labels", lab.float())
    g.add("xent.loss", loss.reshape(1)); g.add("xent.dlogits", z.grad)
    # schedules: OneCycleLR (cos) over 20 steps, max 0.01
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.01)
    sch = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=20)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step(); sch.step()
    g.add("onecycle.lr", torch.tensor(lrs))
    g.write("layers.bin")


# ---- a small MobileNet v1 stage -------------------------------------------

DW = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512), (1, 512),
      (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024)]


def width(c, alpha):
    return max(1, int(round(c * alpha)))


def conv_bn(cin, cout, k, s, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6())


def build_stage(first, last, alpha, in_ch):
    """Returns (units, names, out_channels): units an nn.Sequential of
    conv-BN-ReLU6 triples named like edgetrain's tensors."""
    units, names = [], []
    c = in_ch if first == 1 else width(DW[first - 2][1], alpha)
    for b in range(first, last + 1):
        if b == 1:
            s = width(32, alpha)
            units.append(conv_bn(c, s, 3, 2)); names.append("b1.stem")
            c = s
        stride, out = DW[b - 1]
        units.append(conv_bn(c, c, 3, stride, groups=c)); names.append("b%d.dw" % b)
        o = width(out, alpha)
        units.append(conv_bn(c, o, 1, 1)); names.append("b%d.pw" % b)
        c = o
    return nn.Sequential(*units), names, c


def stage(first, last, fname):
    alpha, size, in_ch, classes, pool, n = 0.25, 16, 3, 5, 2, 4
    g = Golden()
    g.add("config", torch.tensor([alpha, size, in_ch, classes, pool, n, first, last]))
    body, names, c = build_stage(first, last, alpha, in_ch)
    # input shape of the stage
    side, ch = size, in_ch
    if first > 1:
        side = (size + 1) // 2
        for b in range(1, first):
            side = (side - 1) // DW[b - 1][0] + 1
        ch = width(DW[first - 2][1], alpha)
    with torch.no_grad():
        for m in body.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(1.0, 2.0)
                m.bias.uniform_(0.0, 2.0)
    x = torch.rand(n, ch, side, side) * (6.0 if first > 1 else 2.0) - (0 if first > 1 else 1.0)
    labels = torch.tensor([1, 4, 0, 2])
    feat = body(x)
    P = min(pool, feat.shape[2])
    head = nn.Linear(c * P * P, classes)
    with torch.no_grad():
        head.weight.normal_(0, 0.1)
        head.bias.normal_(0, 0.1)
    # parameters before the step
    def params(prefix=""):
        for name, u in zip(names, body):
            conv, bn = u[0], u[1]
            kind = name.split(".")[1]
            conv_w = {"stem": stem_w, "dw": dw_w, "pw": pw_w}[kind]
            yield prefix + name + ".w", conv_w(conv.weight), conv_w, conv.weight
            yield prefix + name + ".bn.gamma", bn.weight, None, bn.weight
            yield prefix + name + ".bn.beta", bn.bias, None, bn.bias
        hw = lambda w: head_w(w, c, P)
        yield prefix + "head.w", hw(head.weight), hw, head.weight
        yield prefix + "head.b", head.bias, None, head.bias
    for name, t, _, _ in params():
        g.add(name, t)
    for name, u in zip(names, body):
        g.add(name + ".bn.rmean0", u[1].running_mean)
        g.add(name + ".bn.rvar0", u[1].running_var)
    g.add("x", nhwc(x)); g.add("labels", labels.float())
    # training forward + backward
    body.train()
    feat = body(x)
    pooled = F.adaptive_avg_pool2d(feat, P).flatten(1)
    logits = head(pooled)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    g.add("out", nhwc(feat)); g.add("logits", logits); g.add("loss", loss.reshape(1))
    for name, t, conv, p in params("grad:"):
        g.add(name, conv(p.grad) if conv else p.grad)
    for name, u in zip(names, body):
        g.add(name + ".bn.rmean", u[1].running_mean)
        g.add(name + ".bn.rvar", u[1].running_var)
    # evaluation forward with the updated running statistics
    body.eval()
    with torch.no_grad():
        ev = head(F.adaptive_avg_pool2d(body(x), P).flatten(1))
    g.add("eval_logits", ev)
    # optimiser steps on the same gradients: decay on conv/dense weights only
    allp = list(params())
    decay = [p for name, _, _, p in allp if name.endswith(".w")]
    other = [p for name, _, _, p in allp if not name.endswith(".w")]
    saved = [p.detach().clone() for _, _, _, p in allp]
    for kind in ("sgd", "adam", "adamw"):
        with torch.no_grad():
            for (_, _, _, p), s in zip(allp, saved):
                p.copy_(s)
        groups = [{"params": decay, "weight_decay": 0.05},
                  {"params": other, "weight_decay": 0.0}]
        if kind == "sgd":
            opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
        elif kind == "adam":
            opt = torch.optim.Adam(groups, lr=0.01)
        else:
            opt = torch.optim.AdamW(groups, lr=0.01)
        for _ in range(3):
            opt.step()
        for name, t, conv, p in params(kind + ":"):
            g.add(name, conv(p) if conv else p)
    g.write(fname)


if __name__ == "__main__":
    if not torch.__version__.startswith("1.13"):
        print("warning: expected torch 1.13, have", torch.__version__, file=sys.stderr)
    layers()
    stage(1, 3, "stage_1_3.bin")
    stage(2, 4, "stage_2_4.bin")
