"""Engine throughput: the seed notes' DataLoader loop vs plain PyTorch done well vs dlpipe's engine.

Same MLP (20-64-32-1, ReLU), same data (make_classification n=1000, 20 features, seed 42;
800 train / 200 test, standardised on train), same optimiser (Adam, lr 1e-3), batch 32.

Part 1, throughput (10 epochs, every loop charged the same work), one line per part of the gain:
(a) seed style, torch's default threads (2 here), then at 1 thread: DataLoader(TensorDataset,
    batch_size=32, shuffle=True), torch.optim.Adam, loss.item() every batch. The better of the two
    counts is "the seed at its best thread count", as benchmarks/cnn_throughput.py and
    sequence_throughput.py give it.
(b) expert plain PyTorch at 1 and 2 threads: one shuffled copy per epoch and contiguous index
    slices, torch.optim.Adam(fused=True), the loss summed on the tensor side (one host sync per
    epoch, no per-batch .item()). Its better count is compared.
(c) dlpipe Trainer with fast_path=False: index slices, flat fused Adam, thread count by model size
    (1 here), autograd.
(d) dlpipe Trainer: (c) plus the hand-written MLP backward (training/fastpath.py).

Part 2, time to a stopping rule on validation rows (replaces the old "time to the seed's test
accuracy", where only dlpipe stopped early and it stopped on test rows): the 800 training rows are
split 640 train / 160 validation; every loop runs at most 200 epochs and stops by the same rule
(validation log loss not better by 1e-4 for 5 epochs; the weights of the best validation epoch
are restored), its per-epoch validation pass timed with it. The seed and expert loops run at their
best thread counts from part 1. Test accuracy on the 200 test rows, mean over the seeds.

Protocol: one untimed warm-up run of each loop, then --repeats interleaved rounds (round r uses seed
r for every loop); the median with the range over rounds; the load average before and after.
Everything runs in one process, so the seed and expert loops also get dlpipe's malloc thresholds
(training/memory.py), which if anything helps them.

    .venv/bin/python benchmarks/engine_vs_dataloader.py [--repeats 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import make_classification
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlpipe.tasks.losses import BCEWithLogitsLoss
from dlpipe.training import Callback, TensorData, Trainer

EPOCHS, BATCH, LR = 10, 32, 1e-3
MAX_EPOCHS, PATIENCE, MIN_DELTA = 200, 5, 1e-4
DEFAULT_THREADS = torch.get_num_threads()


def data():
    x, y = make_classification(
        n_samples=1000, n_features=20, n_informative=10, n_redundant=5, random_state=42
    )
    x = x.astype(np.float32)
    y = y.astype(np.float32)[:, None]
    x_tr, x_te, y_tr, y_te = x[:800], x[800:], y[:800], y[800:]
    mu, sd = x_tr.mean(0), x_tr.std(0)
    return [torch.from_numpy(a) for a in ((x_tr - mu) / sd, y_tr, (x_te - mu) / sd, y_te)]


def model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1)
    )


def accuracy(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    m.eval()
    with torch.inference_mode():
        return float(((m(x) > 0).float() == y).float().mean())


class StopRule:
    """The one stopping rule every loop obeys: validation log loss, patience, best weights back."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.best = float("inf")
        self.wait = 0
        self.epochs = 0
        self.best_state: dict[str, torch.Tensor] = {}

    def after_epoch(self, m: nn.Module) -> bool:
        self.epochs += 1
        m.eval()
        with torch.inference_mode():
            loss = float(nn.functional.binary_cross_entropy_with_logits(m(self.x), self.y))
        m.train()
        if loss < self.best - MIN_DELTA:
            self.best, self.wait = loss, 0
            self.best_state = {k: v.detach().clone() for k, v in m.state_dict().items()}
        else:
            self.wait += 1
        return self.wait >= PATIENCE

    def restore(self, m: nn.Module) -> None:
        m.load_state_dict(self.best_state)


def seed_style(
    x, y, seed: int, threads: int, rule: StopRule | None = None
) -> tuple[float, nn.Module]:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    m = model(seed)
    opt = torch.optim.Adam(m.parameters(), lr=LR)
    loss_fn = nn.BCEWithLogitsLoss()
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    start = time.perf_counter()
    for _ in range(EPOCHS if rule is None else MAX_EPOCHS):
        m.train()
        running = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(m(xb), yb)
            loss.backward()
            opt.step()
            running += loss.item()
        if rule is not None and rule.after_epoch(m):
            break
    if rule is not None:
        rule.restore(m)
    return time.perf_counter() - start, m


def expert(x, y, seed: int, threads: int, rule: StopRule | None = None) -> tuple[float, nn.Module]:
    """Plain PyTorch as an expert writes it: no DataLoader, fused Adam, no per-batch host sync."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    m = model(seed)
    opt = torch.optim.Adam(m.parameters(), lr=LR, fused=True)
    loss_fn = nn.BCEWithLogitsLoss()
    n = len(x)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(EPOCHS if rule is None else MAX_EPOCHS):
        m.train()
        perm = torch.randperm(n, generator=gen)
        xs, ys = x[perm], y[perm]  # one gather per epoch, then contiguous slices
        running = torch.zeros(())
        for i in range(0, n, BATCH):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(m(xs[i : i + BATCH]), ys[i : i + BATCH])
            loss.backward()
            opt.step()
            running += loss.detach()
        float(running)  # the epoch's loss, read once
        if rule is not None and rule.after_epoch(m):
            break
    if rule is not None:
        rule.restore(m)
    return time.perf_counter() - start, m


class _Rule(Callback):
    def __init__(self, rule: StopRule) -> None:
        self.rule = rule

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        if self.rule.after_epoch(trainer.model):
            trainer.stop_training = True


def dlpipe_engine(
    x, y, seed: int, fast_path: bool = True, rule: StopRule | None = None
) -> tuple[float, nn.Module]:
    torch.set_num_threads(DEFAULT_THREADS)  # the engine picks its own count (1 for this model)
    m = model(seed)
    t = Trainer(
        epochs=EPOCHS if rule is None else MAX_EPOCHS,
        batch_size=BATCH,
        learning_rate=LR,
        optimizer="adam",
        weight_decay=0.0,
        seed=seed,
        device="cpu",
        callbacks=[] if rule is None else [_Rule(rule)],
    )
    t.fast_path = fast_path
    start = time.perf_counter()
    t.fit(m, BCEWithLogitsLoss(), TensorData((x,), y))
    if rule is not None:
        rule.restore(m)
    return time.perf_counter() - start, m


Loop = Callable[..., tuple[float, nn.Module]]


def interleave(
    loops: dict[str, Loop], x, y, repeats: int, make_rule: Callable[[], StopRule] | None = None
) -> tuple[dict[str, list[float]], dict[str, list[nn.Module]], dict[str, list[int]]]:
    for fn in loops.values():  # warm-up: allocator, optimizer imports, first-call costs
        fn(x, y, 0)
    times: dict[str, list[float]] = {k: [] for k in loops}
    models: dict[str, list[nn.Module]] = {k: [] for k in loops}
    epochs: dict[str, list[int]] = {k: [] for k in loops}
    for r in range(repeats):  # interleaved, so load changes hit every loop alike
        for name, fn in loops.items():
            rule = make_rule() if make_rule else None
            dt, m = fn(x, y, r, rule=rule)
            times[name].append(dt)
            models[name].append(m)
            epochs[name].append(rule.epochs if rule else EPOCHS)
    torch.set_num_threads(DEFAULT_THREADS)
    return times, models, epochs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds (= seeds 0..n-1)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    load_start = os.getloadavg()
    x_tr, y_tr, x_te, y_te = data()
    n = len(x_tr) * EPOCHS

    loops: dict[str, Loop] = {
        f"seed style, {DEFAULT_THREADS} threads (torch's default)": partial(
            seed_style, threads=DEFAULT_THREADS
        ),
        "seed style, 1 thread": partial(seed_style, threads=1),
        "expert plain PyTorch, 1 thread": partial(expert, threads=1),
        "expert plain PyTorch, 2 threads": partial(expert, threads=2),
        "dlpipe Trainer, fast_path=False (autograd)": partial(dlpipe_engine, fast_path=False),
        "dlpipe Trainer (MLP fast path)": dlpipe_engine,
    }
    times, models, _ = interleave(loops, x_tr, y_tr, args.repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    names = list(loops)
    seed_best = min(names[:2], key=lambda k: med[k])
    expert_best = min(names[2:4], key=lambda k: med[k])
    out: dict = {"repeats": args.repeats, "load_avg_start": load_start, "throughput": {}}
    print(f"throughput: {args.repeats} interleaved rounds, {n} samples per run; median (range)")
    print(
        f"{'loop':<46}{'samples/s':>11}{'range':>20}{'vs seed 2t':>11}{'vs seed best':>13}{'test acc':>10}"
    )
    base = med[names[0]]
    for k in names:
        rates = [n / t for t in times[k]]
        acc = statistics.mean(accuracy(m, x_te, y_te) for m in models[k])
        print(
            f"{k:<46}{n / med[k]:>11,.0f}{f'{min(rates):,.0f}-{max(rates):,.0f}':>20}"
            f"{base / med[k]:>11.2f}{med[seed_best] / med[k]:>13.2f}{acc:>10.4f}"
        )
        out["throughput"][k] = {
            "samples_per_s_median": n / med[k],
            "samples_per_s_range": [min(rates), max(rates)],
            "vs_seed_default_threads": base / med[k],
            "vs_seed_best_threads": med[seed_best] / med[k],
            "test_accuracy_mean": acc,
        }
    print(f"seed at its best thread count: {seed_best}; expert at its best: {expert_best}")

    # Part 2: every loop stops by the same rule on the same validation rows.
    x_fit, y_fit, x_val, y_val = x_tr[:640], y_tr[:640], x_tr[640:], y_tr[640:]
    stop_loops: dict[str, Loop] = {
        seed_best: loops[seed_best],
        expert_best: loops[expert_best],
        "dlpipe Trainer (MLP fast path)": loops["dlpipe Trainer (MLP fast path)"],
    }
    times2, models2, epochs2 = interleave(
        stop_loops, x_fit, y_fit, args.repeats, lambda: StopRule(x_val, y_val)
    )
    print(
        f"\ntime to the stopping rule (val log loss, patience {PATIENCE}, best weights restored), "
        f"640 train / 160 validation rows; median (range); test accuracy mean over seeds 0-{args.repeats - 1}"
    )
    print(f"{'loop':<46}{'seconds':>9}{'range':>16}{'epochs':>12}{'vs seed':>9}{'test acc':>22}")
    out["stopping_rule"] = {}
    s0 = statistics.median(times2[seed_best])
    for k in stop_loops:
        t = times2[k]
        accs = [accuracy(m, x_te, y_te) for m in models2[k]]
        print(
            f"{k:<46}{statistics.median(t):>9.3f}{f'{min(t):.3f}-{max(t):.3f}':>16}"
            f"{f'{min(epochs2[k])}-{max(epochs2[k])}':>12}{s0 / statistics.median(t):>9.2f}"
            f"{f'{statistics.mean(accs):.4f} ± {statistics.stdev(accs) if len(accs) > 1 else 0.0:.4f}':>22}"
        )
        out["stopping_rule"][k] = {
            "seconds_median": statistics.median(t),
            "seconds_range": [min(t), max(t)],
            "epochs": epochs2[k],
            "vs_seed": s0 / statistics.median(t),
            "test_accuracy": accs,
        }
    out["load_avg_end"] = os.getloadavg()
    print(f"\nload average (1, 5, 15 min) at start {load_start}, at end {out['load_avg_end']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
