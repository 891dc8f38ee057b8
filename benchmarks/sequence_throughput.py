"""Sequence throughput: the seed notes' DataLoader loop vs dlpipe's windows + engine, side by side.

Same model (LSTM(1 -> 32) + Linear(32 -> 1)), same data (10,000 windows of lookback 30 from a noisy
sine, min-max scaled), same optimiser (Adam, lr 1e-3), batch 32.

The seed loop runs in its own process (so nothing dlpipe sets in its process reaches it), at one
thread and at torch's default thread count; its better figure is the one compared. dlpipe runs as
the engine picks threads for this model (one). One untimed warm-up epoch each first, then
interleaved timed rounds; best and median of each (this VM's timings vary by up to 1.5x from one
round to the next, so compare figures from one run only).

(a) seed style:  a Dataset whose __getitem__ slices one window, DataLoader(shuffle=True),
                 torch.optim.Adam, loss.item() every batch
(b) dlpipe:      make_windows (one (N, 30, 1) tensor) + Trainer (index-sliced batches, flat fused
                 Adam, one host sync per epoch) + the LSTM layer as this CPU's default picks it
                 (the compiled models/native/lstm.c only with AVX-512, else torch's nn.LSTM); also
                 with each of the two forced (DLPIPE_LSTM_KERNEL=1 / 0)

    .venv/bin/python benchmarks/sequence_throughput.py [--epochs 1] [--repeats 5]

``--minirocket`` measures MiniRocket's feature transform instead (the sequence classifiers' default,
dlpipe/models/minirocket.py): 10,000 features of 500 univariate series of 150 steps (GunPoint's
length), with the compiled kernel (models/native/minirocket.c) and with torch's kernels alone, one
thread, best and median of --repeats rounds, interleaved.
"""

from __future__ import annotations

import argparse
import os
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


def _forced_kernel(s: np.ndarray, epochs: int, setting: str) -> float:
    """dlpipe's loop with the compiled LSTM forced on ("1") or off ("0") whatever this CPU's default
    (models/fused.py: lstm_kernel_wanted, on by default only with AVX-512)."""
    saved = os.environ.get("DLPIPE_LSTM_KERNEL")
    os.environ["DLPIPE_LSTM_KERNEL"] = setting
    try:
        return dlpipe_loop(s, epochs, None)
    finally:
        if saved is None:
            del os.environ["DLPIPE_LSTM_KERNEL"]
        else:
            os.environ["DLPIPE_LSTM_KERNEL"] = saved


def dlpipe_loop(s: np.ndarray, epochs: int, threads: int | None) -> float:
    torch.manual_seed(0)
    xs, ys, _ = make_windows(s[:, None], s[:, None], LOOKBACK, 1)
    data = TensorData((torch.from_numpy(xs),), torch.from_numpy(ys))
    model = build_model(
        {
            "family": "lstm",
            "n_features": 1,
            "n_outputs": 1,
            "hidden": [32],
            "forecast": True,
            "dropout": 0.0,
        }
    )
    trainer = Trainer(
        epochs=epochs,
        batch_size=BATCH,
        learning_rate=LR,
        optimizer="adam",
        device="cpu",
        threads=threads,
    )
    t0 = time.perf_counter()
    trainer.fit(model, MSELoss(), data)
    return N_WINDOWS * epochs / (time.perf_counter() - t0)


def _seed_worker(conn, epochs: int) -> None:  # type: ignore[no-untyped-def]
    s = series()
    while (threads := conn.recv()) is not None:
        torch.set_num_threads(threads)
        conn.send(seed_loop(s, epochs))


def minirocket_transform(repeats: int) -> None:
    """Cases per second of MiniRocket's transform: compiled kernel vs torch's kernels, one thread."""
    import os

    import dlpipe.models.minirocket as mr

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 150, 1, generator=g)
    mask = torch.ones(500, 150)
    model = mr.MiniRocket({"n_features": 1, "length": 150, "n_outputs": 2})
    model.fit(x[:50], mask[:50], torch.arange(50) % 2, seed=0)
    compiled = mr._native
    modes = {"compiled kernel": compiled, "torch kernels only": lambda x: None}
    times: dict[str, list[float]] = {k: [] for k in modes}
    for _ in range(repeats + 1):  # the first round is a warm-up
        for name, native in modes.items():
            mr._native = native  # type: ignore[assignment]
            t0 = time.perf_counter()
            model.transform(x, mask)
            times[name].append(time.perf_counter() - t0)
    mr._native = compiled  # type: ignore[assignment]
    load = os.getloadavg()[0]
    print(
        f"MiniRocket transform, 500 x 150 x 1 -> 9,996 features, 1 thread, load average {load:.1f}"
    )
    print(f"{'mode':<24}{'best cases/s':>14}{'median':>10}")
    for name, t in times.items():
        t = t[1:]
        print(f"{name:<24}{500 / min(t):>14,.0f}{500 / statistics.median(t):>10,.0f}")


def main() -> None:
    import multiprocessing as mp
    import os

    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--minirocket", action="store_true", help="MiniRocket's transform instead")
    args = ap.parse_args()
    if args.minirocket:
        minirocket_transform(args.repeats)
        return
    load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    s = series()
    assert len(s) - LOOKBACK == N_WINDOWS
    default_threads = torch.get_num_threads()
    ctx = mp.get_context("spawn")
    conn, child = ctx.Pipe()
    worker = ctx.Process(target=_seed_worker, args=(child, args.epochs), daemon=True)
    worker.start()

    def seed(threads: int) -> float:
        conn.send(threads)
        return float(conn.recv())

    modes = {
        "seed-style DataLoader loop, 1 thread": lambda: seed(1),
        f"seed-style DataLoader loop, {default_threads} threads (torch default)": lambda: seed(
            default_threads
        ),
        "dlpipe windows + Trainer (threads as the engine picks)": lambda: dlpipe_loop(
            s, args.epochs, None
        ),
        "dlpipe, compiled LSTM forced on (DLPIPE_LSTM_KERNEL=1)": lambda: _forced_kernel(
            s, args.epochs, "1"
        ),
        "dlpipe, torch's nn.LSTM forced (DLPIPE_LSTM_KERNEL=0)": lambda: _forced_kernel(
            s, args.epochs, "0"
        ),
    }
    for fn in modes.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {k: [] for k in modes}
    for _ in range(args.repeats):  # interleaved, so every mode sees the same machine load
        for name, fn in modes.items():
            rates[name].append(fn())
    conn.send(None)
    worker.join()
    names = list(modes)
    seed_best = max(max(rates[names[0]]), max(rates[names[1]]))
    # the one protocol (issue #21): medians over the interleaved rounds, the seed at its better count
    seed_med = max(statistics.median(rates[names[0]]), statistics.median(rates[names[1]]))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"LSTM(1->32)+Linear, lookback {LOOKBACK}, batch {BATCH}, {N_WINDOWS} windows, {args.epochs} epoch(s) x {args.repeats} rounds, "
        f"load average {load_start:.1f} at start, {load:.1f} at end"
    )
    print(
        f"{'mode':<64}{'best w/s':>10}{'median':>10}{'range':>17}{'vs seed (best)':>15}{'vs seed (medians)':>18}"
    )
    for name, values in rates.items():
        print(
            f"{name:<64}{max(values):>10,.0f}{statistics.median(values):>10,.0f}"
            f"{f'{min(values):,.0f}-{max(values):,.0f}':>17}{max(values) / seed_best:>14.2f}x"
            f"{statistics.median(values) / seed_med:>17.2f}x"
        )


if __name__ == "__main__":
    main()
