"""Engine throughput: the seed notes' DataLoader loop vs dlpipe's engine, side by side in one run.

Same MLP (20-64-32-1, ReLU), same data (make_classification n=1000, 20 features, seed 42;
800 train / 200 test, standardised on train), same optimiser (Adam, lr 1e-3), batch 32, 10 epochs.

(a) seed style:  DataLoader(TensorDataset, batch_size=32, shuffle=True) + loss.item() every batch
(b) dlpipe:      Trainer (index-sliced batches, flat fused Adam, MLP fast path, 1 thread for tiny models)
(c) dlpipe with fast_path=False (autograd), to show what the hand-written backward adds

Then time-to-accuracy: the seed recipe's final test accuracy, and how long dlpipe's own defaults
(AdamW, auto batch size, early stopping) take to reach it.

    .venv/bin/python benchmarks/engine_vs_dataloader.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from sklearn.datasets import make_classification
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dlpipe.tasks.losses import BCEWithLogitsLoss
from dlpipe.training import Callback, TensorData, Trainer

EPOCHS, BATCH, LR = 10, 32, 1e-3


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


def seed_style(x, y, seed: int) -> tuple[float, nn.Module]:
    torch.manual_seed(seed)
    m = model(seed)
    opt = torch.optim.Adam(m.parameters(), lr=LR)
    loss_fn = nn.BCEWithLogitsLoss()
    loader = DataLoader(TensorDataset(x, y), batch_size=BATCH, shuffle=True)
    start = time.perf_counter()
    for _ in range(EPOCHS):
        m.train()
        running = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(m(xb), yb)
            loss.backward()
            opt.step()
            running += loss.item()
    return time.perf_counter() - start, m


def dlpipe_engine(x, y, seed: int, fast_path: bool = True) -> tuple[float, nn.Module]:
    m = model(seed)
    t = Trainer(
        epochs=EPOCHS,
        batch_size=BATCH,
        learning_rate=LR,
        optimizer="adam",
        weight_decay=0.0,
        seed=seed,
        device="cpu",
    )
    t.fast_path = fast_path
    start = time.perf_counter()
    t.fit(m, BCEWithLogitsLoss(), TensorData((x,), y))
    return time.perf_counter() - start, m


class _StopAt(Callback):
    def __init__(self, x, y, target: float) -> None:
        self.x, self.y, self.target = x, y, target

    def on_fit_start(self, trainer) -> None:
        self.start = time.perf_counter()
        self.reached: tuple[int, float, float] | None = None

    def on_epoch_end(self, trainer, epoch, logs) -> None:
        acc = accuracy(trainer.model, self.x, self.y)
        trainer.model.train()
        if acc >= self.target and self.reached is None:
            self.reached = (epoch, time.perf_counter() - self.start, acc)
            trainer.stop_training = True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    x_tr, y_tr, x_te, y_te = data()
    n = len(x_tr) * EPOCHS
    # Warm up both paths once (first-call costs: allocator, optimizer imports).
    seed_style(x_tr, y_tr, 0)
    dlpipe_engine(x_tr, y_tr, 0)
    times: dict[str, list[float]] = {"seed": [], "dlpipe": [], "dlpipe_autograd": []}
    accs: dict[str, list[float]] = {k: [] for k in times}
    for r in range(args.repeats):  # interleaved, so load changes hit all three alike
        for name, fn in (
            ("seed", seed_style),
            ("dlpipe", dlpipe_engine),
            ("dlpipe_autograd", lambda a, b, s: dlpipe_engine(a, b, s, False)),
        ):
            dt, m = fn(x_tr, y_tr, r)
            times[name].append(dt)
            accs[name].append(accuracy(m, x_te, y_te))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"threads available: {torch.get_num_threads()}, repeats: {args.repeats}, samples per run: {n}"
    )
    print(f"{'loop':<18}{'samples/s':>12}{'ratio':>8}{'test acc (mean)':>18}")
    for k in times:
        print(
            f"{k:<18}{n / med[k]:>12,.0f}{med['seed'] / med[k]:>8.2f}{statistics.mean(accs[k]):>18.4f}"
        )

    # Time to accuracy: the seed recipe's accuracy, reached by dlpipe's defaults (AdamW, batch auto=32, lr 1e-3).
    target = statistics.mean(accs["seed"])
    stop = _StopAt(x_te, y_te, target)
    m = model(0)
    t = Trainer(
        epochs=200,
        batch_size=32,
        learning_rate=1e-3,
        optimizer="adamw",
        weight_decay=1e-4,
        callbacks=[stop],
        device="cpu",
    )
    t.fit(m, BCEWithLogitsLoss(), TensorData((x_tr,), y_tr))
    seed_time = med["seed"]
    if stop.reached:
        ep, dt, acc = stop.reached
        print(
            f"time to the seed recipe's test accuracy {target:.4f}: seed recipe {seed_time:.3f} s (10 epochs); "
            f"dlpipe defaults {dt:.3f} s ({ep} epochs, acc {acc:.4f}, per-epoch test evaluation included) -> {seed_time / dt:.1f}x"
        )
    else:
        print(f"dlpipe defaults did not reach {target:.4f} within 200 epochs")


if __name__ == "__main__":
    main()
