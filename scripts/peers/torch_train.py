#!/usr/bin/python3
"""Train svhn's resnet in PyTorch on svhn's own preprocess cache, with the same recipe as
`svhn train --model resnet`, and report test accuracy: the parity check of issue 11.

Usage:
  /usr/bin/python3 scripts/peers/torch_train.py --data-dir data [--epochs 8] [--lr 2e-3]
      [--schedule cosine|onecycle|constant] [--warmup-epochs 1] [--weight-decay 0.05]
      [--label-smoothing 0.1] [--augment-strength 1 | --no-augment] [--batch-size 64]
      [--limit N] [--threads N] [--seed 42] [--json out.json]

Data: <data-dir>/cache/{train,val,test}.{images,labels}.u8 (NHWC uint8, labels 0..9), the
files `svhn preprocess` writes; pixels / 255 as svhn's batches. --limit takes the first N of
a seeded permutation (not svhn's stratified sample: parity is about the recipe, not the draw).

Recipe, as src/train/loop.ts: Adam(eps 1e-7) or AdamW on conv/dense kernels only (decoupled,
as train/adam.ts), per-step rates from src/train/schedule.ts' formulas, label smoothing on
the targets, svhn's augmentation (train/augment.ts: shift, scale, rotation about the centre,
bilinear with edge pixels repeated, then contrast about the image mean, clipped to [0, 1]),
and the checkpoint kept at the best val_acc epoch, as svhn's model directory keeps it.
"""
import argparse, json, math, os, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_models import resnet  # noqa: E402

AUG = {"shift": 2.0, "scale": 0.1, "rotate_deg": 10.0, "contrast": 0.2}


def load_split(cache, split):
    x = np.fromfile(os.path.join(cache, f"{split}.images.u8"), dtype=np.uint8)
    y = np.fromfile(os.path.join(cache, f"{split}.labels.u8"), dtype=np.uint8)
    x = x.reshape(len(y), 32, 32, 3)
    return torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255.0), torch.from_numpy(y.astype(np.int64))


def learning_rate(schedule, lr, warmup_epochs, step, total, per_epoch):
    last = max(1, total) - 1
    t = min(step, last)
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        warm = min(round(warmup_epochs * per_epoch), last)
        if t < warm:
            return lr * (t + 1) / warm
        span = last - warm
        return lr * 0.5 * (1 + math.cos(math.pi * (t - warm) / span)) if span > 0 else lr
    initial = lr / 25
    final = initial / 1e4
    peak = 0.3 * total - 1
    cos = lambda a, b, p: b + (a - b) / 2 * (math.cos(math.pi * p) + 1)
    if t <= peak:
        return cos(initial, lr, t / peak if peak > 0 else 1)
    return cos(lr, final, (t - peak) / (last - peak))


def augment(x, gen, strength):
    """svhn's augment.ts on a batch: affine about the centre (bilinear, border repeat), contrast."""
    n = x.shape[0]
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)
    s = strength
    tx, ty = u(-AUG["shift"] * s, AUG["shift"] * s), u(-AUG["shift"] * s, AUG["shift"] * s)
    scale = u(1 - min(AUG["scale"] * s, 0.5), 1 + min(AUG["scale"] * s, 0.5))
    ang = u(-AUG["rotate_deg"] * s, AUG["rotate_deg"] * s) * math.pi / 180
    con = u(1 - min(AUG["contrast"] * s, 0.9), 1 + min(AUG["contrast"] * s, 0.9))
    # Output pixel p samples the input at R(-ang)/scale (p - c - t) + c; affine_grid works in
    # [-1, 1] coordinates with align_corners=True (pixel centres at the ends), so the shift
    # in pixels becomes 2 t / (32 - 1).
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 1] = cos, sin
    theta[:, 1, 0], theta[:, 1, 1] = -sin, cos
    k = 2.0 / 31
    theta[:, 0, 2] = -(cos * tx + sin * ty) * k
    theta[:, 1, 2] = -(-sin * tx + cos * ty) * k
    grid = F.affine_grid(theta, x.shape, align_corners=True)
    y = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
    mean = y.mean(dim=(1, 2, 3), keepdim=True)
    return (mean + (y - mean) * con.view(n, 1, 1, 1)).clamp_(0, 1)


@torch.no_grad()
def evaluate(model, x, y, bs=512):
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(y), bs):
        out = model(x[i:i + bs])
        loss += F.cross_entropy(out, y[i:i + bs], reduction="sum").item()
        correct += (out.argmax(1) == y[i:i + bs]).sum().item()
    return loss / len(y), correct / len(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--schedule", choices=["constant", "cosine", "onecycle"], default="cosine")
    ap.add_argument("--warmup-epochs", type=float, default=1)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--label-smoothing", type=float, default=0.1)
    ap.add_argument("--augment-strength", type=float, default=1)
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed + 1)
    cache = os.path.join(a.data_dir, "cache")
    xtr, ytr = load_split(cache, "train")
    xva, yva = load_split(cache, "val")
    xte, yte = load_split(cache, "test")
    if a.limit:
        keep = torch.randperm(len(ytr), generator=torch.Generator().manual_seed(a.seed))[:a.limit]
        xtr, ytr = xtr[keep], ytr[keep]
    model = resnet()
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    rest = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    groups = [{"params": decay, "weight_decay": a.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, eps=1e-7) if a.weight_decay > 0 else torch.optim.Adam(model.parameters(), lr=a.lr, eps=1e-7)
    per_epoch = math.ceil(len(ytr) / a.batch_size)
    total = a.epochs * per_epoch
    best = {"val_acc": -1}
    history = []
    step = 0
    for epoch in range(1, a.epochs + 1):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(ytr), generator=gen)
        seen, loss_sum, correct = 0, 0.0, 0
        for i in range(0, len(ytr), a.batch_size):
            idx = perm[i:i + a.batch_size]
            xb, yb = xtr[idx], ytr[idx]
            if not a.no_augment:
                xb = augment(xb, gen, a.augment_strength)
            for g in opt.param_groups:
                g["lr"] = learning_rate(a.schedule, a.lr, a.warmup_epochs, step, total, per_epoch)
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = F.cross_entropy(out, yb, label_smoothing=a.label_smoothing)
            loss.backward()
            opt.step()
            step += 1
            seen += len(yb)
            loss_sum += loss.item() * len(yb)
            correct += (out.argmax(1) == yb).sum().item()
        secs = time.perf_counter() - t0
        val_loss, val_acc = evaluate(model, xva, yva)
        rec = {"epoch": epoch, "loss": loss_sum / seen, "acc": correct / seen, "val_loss": val_loss, "val_acc": val_acc,
               "seconds": secs, "images_per_sec": seen / secs}
        history.append(rec)
        print(json.dumps(rec), file=sys.stderr, flush=True)
        if val_acc > best["val_acc"]:
            best = {"val_acc": val_acc, "epoch": epoch, "state": {k: v.clone() for k, v in model.state_dict().items()}}
    model.load_state_dict(best["state"])
    test_loss, test_acc = evaluate(model, xte, yte)
    res = {"model": "resnet", "torch": torch.__version__, "threads": torch.get_num_threads(), "train": len(ytr),
           "val": len(yva), "test": len(yte), "best_epoch": best["epoch"], "val_acc": best["val_acc"],
           "test_loss": test_loss, "test_acc": test_acc, "recipe": {k: v for k, v in vars(a).items() if k not in ("json",)},
           "history": history}
    print(json.dumps(res))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
