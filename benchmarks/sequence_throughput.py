"""Sequence throughput: the seed notes' DataLoader loop vs dlpipe's windows + engine, side by side.

Same model (LSTM(1 -> 32) + Linear(32 -> 1)), same data (10,000 windows of lookback 30 from a noisy
sine, min-max scaled), same optimiser (Adam, lr 1e-3), batch 32, same thread count.

(a) seed style:  a Dataset whose __getitem__ slices one window, DataLoader(shuffle=True),
                 torch.optim.Adam, loss.item() every batch
(b) dlpipe:      make_windows (one (N, 30, 1) tensor) + Trainer (index-sliced batches, flat fused
                 Adam, one host sync per epoch)

    .venv/bin/python benchmarks/sequence_throughput.py [--epochs 2] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dlpipe.data.series import SeriesScaler, make_windows
from dlpipe.models.registry import build_model
from dlpipe.tasks.losses import MSELoss
from dlpipe.training import TensorData, Trainer

LOOKBACK, N_WINDOWS, BATCH, LR = 30, 10_000, 32, 1e-3


class SeedLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(1, 32, batch_first=True)
        self.fc = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


class WindowDataset(Dataset):
    """The seed notes' pattern: one window sliced per item."""

    def __init__(self, series: np.ndarray) -> None:
        self.s = torch.from_numpy(series.astype(np.float32))

    def __len__(self) -> int:
        return len(self.s) - LOOKBACK

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.s[i : i + LOOKBACK, None], self.s[i + LOOKBACK, None]


def series() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(N_WINDOWS + LOOKBACK)
    raw = np.sin(t / 10.0) + 0.1 * rng.normal(size=len(t))
    return SeriesScaler("minmax").fit(raw[:, None]).transform(raw[:, None])[:, 0]


def seed_loop(s: np.ndarray, epochs: int) -> float:
    torch.manual_seed(0)
    model = SeedLSTM()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loader = DataLoader(WindowDataset(s), batch_size=BATCH, shuffle=True)
    loss_fn = nn.MSELoss()
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            _ = loss.item()  # the seed notes log every batch
    return N_WINDOWS * epochs / (time.perf_counter() - t0)


def dlpipe_loop(s: np.ndarray, epochs: int, threads: int) -> float:
    torch.manual_seed(0)
    xs, ys, _ = make_windows(s[:, None], s[:, None], LOOKBACK, 1)
    data = TensorData((torch.from_numpy(xs),), torch.from_numpy(ys))
    model = build_model({"family": "lstm", "n_features": 1, "n_outputs": 1, "hidden": [32], "forecast": True, "dropout": 0.0})
    trainer = Trainer(epochs=epochs, batch_size=BATCH, learning_rate=LR, optimizer="adam", device="cpu", threads=threads)
    t0 = time.perf_counter()
    trainer.fit(model, MSELoss(), data)
    return N_WINDOWS * epochs / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    s = series()
    assert len(s) - LOOKBACK == N_WINDOWS
    seed, ours = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        seed.append(seed_loop(s, args.epochs))
        ours.append(dlpipe_loop(s, args.epochs, args.threads))
    a, b = statistics.median(seed), statistics.median(ours)
    print(f"LSTM(1->32)+Linear, lookback {LOOKBACK}, batch {BATCH}, {N_WINDOWS} windows, {args.epochs} epochs x {args.repeats} repeats, {args.threads} thread(s)")
    print(f"seed-style DataLoader loop : {a:10,.0f} windows/s  (runs: {', '.join(f'{v:,.0f}' for v in seed)})")
    print(f"dlpipe windows + Trainer   : {b:10,.0f} windows/s  (runs: {', '.join(f'{v:,.0f}' for v in ours)})")
    print(f"ratio dlpipe / seed        : {b / a:.2f}x")


if __name__ == "__main__":
    main()
