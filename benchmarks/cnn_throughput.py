"""Training images/s of the seed CNN (conv32-pool-conv64-pool-dense10) on 28x28x1, batch 64, side by side.

Modes, measured in interleaved rounds (best round per mode, so a burst of load from other processes
on this shared machine hurts every mode alike):

- ``seed loop``: the seed notes' PyTorch loop and network as they write it (conv-relu-pool, NCHW):
  float32 TensorDataset + DataLoader(shuffle=True), torch.optim.Adam, ``loss.item()`` every step.
  It runs in a separate process, so it keeps glibc's default malloc settings (dlpipe's engine
  raises the mmap threshold once it trains: training/memory.py);
- ``bare f+b+step``: dlpipe's model as dl.train builds it (pool before ReLU, channels_last),
  forward + backward + FlatOptimizer step over pre-made float batches: the ceiling the engine can
  approach with no data handling at all;
- ``dlpipe``: dlpipe's Trainer on uint8 storage with the per-batch image transform (float +
  normalise + channels_last), as ``dl.train`` runs it (threads picked by the engine; the first
  block conv-pool-ReLU through the compiled kernel, models/native/stem.c), and variants: torch's
  kernels for that block (as without a C compiler), NCHW, and bf16 autocast on CPU
  (``--precision bf16``, which runs torch's kernels).

The same for **dlpipe's default CNN** (what ``dl.train`` builds for images: conv32-pool-BN-ReLU,
conv64-pool-BN-ReLU, dense 128, dropout 0.25) at batch 128 (``dl.train``'s batch for 10,000-50,000
images), whose first block has batch norm and so never takes the compiled kernel:

- ``seed loop``: the same network as a user writes it in plain PyTorch (conv-BN-ReLU-pool, NCHW),
  in the seed notes' loop (DataLoader, Adam, ``loss.item()`` every step);
- ``expert plain PyTorch``: dlpipe's default network module in plain PyTorch as an expert writes the
  loop: float32 tensors in memory, one ``randperm`` gather per epoch and index slices as batches,
  channels_last, ``torch.optim.AdamW(fused=True)``, the loss summed on the device and read once.

Both plain-PyTorch loops (and the seed CNN's expert row) run in the separate process, each at 1
thread and at torch's default; the ratios are against the better of the two.

Also: the model's FLOPs per image (torch's FlopCounterMode), the achieved GFLOP/s, and this CPU's
measured peak on the model's 32->64 3x3 convolution forward+backward; and the test accuracy of fp32
vs bf16 training of the default CNN on sklearn's digits (same seed).

Run:  .venv/bin/python benchmarks/cnn_throughput.py [--images 8192] [--rounds 5] [--skip-seed-cnn] [--skip-default-cnn]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from dlpipe.data.images import ImageDataset, ImagePreprocessor
from dlpipe.models.cnn import default_cnn_spec, seed_cnn_spec
from dlpipe.models.registry import build_model
from dlpipe.pipeline._fit_images import Autocast, image_transform
from dlpipe.training.optim import FlatOptimizer
from dlpipe.training.trainer import TensorData, Trainer

BATCH = 64
DEFAULT_BATCH = 128  # dl.train's auto batch size for 10,000-50,000 training images (MNIST's 48,000)


def _model(channels_last: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_model(seed_cnn_spec())
    return m.to(memory_format=torch.channels_last) if channels_last else m


def _seed_network() -> torch.nn.Module:
    """The seed notes' CNN exactly as they write it (Keras order: conv-relu-pool), default NCHW layout."""
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(1600, 10),
    )


def _default_network_plain() -> torch.nn.Module:
    """dlpipe's default CNN as a user writes it in plain PyTorch: conv-BN-ReLU-pool blocks, NCHW."""
    from torch import nn

    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(3136, 128),
        nn.ReLU(),
        nn.Dropout(0.25),
        nn.Linear(128, 10),
    )


def _default_model(channels_last: bool = True) -> torch.nn.Module:
    """dlpipe's default CNN for 28x28x1 images, exactly as dl.train builds it."""
    torch.manual_seed(0)
    m = build_model(default_cnn_spec(1, (28, 28), 10))
    return m.to(memory_format=torch.channels_last) if channels_last else m


def seed_loop(
    x_float: torch.Tensor,
    y: torch.Tensor,
    model: torch.nn.Module | None = None,
    batch: int = BATCH,
) -> float:
    from torch.utils.data import DataLoader, TensorDataset

    model = _seed_network() if model is None else model
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x_float, y), batch_size=batch, shuffle=True)
    model.train()
    t0 = time.perf_counter()
    n = 0
    for xb, yb in loader:
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        _ = loss.item()  # the seed notes log every step
        n += len(xb)
    return n / (time.perf_counter() - t0)


def expert_loop(
    x_float: torch.Tensor, y: torch.Tensor, model: torch.nn.Module, batch: int
) -> float:
    """Plain PyTorch as an expert writes it: in-memory tensors, one gather per epoch, index slices,
    channels_last, fused AdamW, no per-step host sync (the loss summed on the device, read once)."""
    model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4, fused=True)
    g = torch.Generator().manual_seed(0)
    steps = len(y) // batch
    model.train()
    t0 = time.perf_counter()
    perm = torch.randperm(len(y), generator=g)
    xs, ys = x_float[perm].contiguous(memory_format=torch.channels_last), y[perm]
    total = torch.zeros(())
    for s in range(steps):
        loss = F.cross_entropy(
            model(xs[s * batch : (s + 1) * batch]), ys[s * batch : (s + 1) * batch]
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.detach()
    _ = float(total)  # the one read of the epoch's loss
    return steps * batch / (time.perf_counter() - t0)


def bare_steps(x_float: torch.Tensor, y: torch.Tensor) -> float:
    model = _model()
    opt = FlatOptimizer(model.parameters(), "adamw", learning_rate=1e-3)
    batches = [
        (x_float[s : s + BATCH].contiguous(memory_format=torch.channels_last), y[s : s + BATCH])
        for s in range(0, len(y) - BATCH + 1, BATCH)
    ]
    model.train()
    t0 = time.perf_counter()
    for xb, yb in batches:
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    return len(batches) * BATCH / (time.perf_counter() - t0)


def engine(
    x_uint8: torch.Tensor,
    y: torch.Tensor,
    pre: ImagePreprocessor,
    *,
    channels_last: bool = True,
    bf16: bool = False,
    threads: int | None = None,
    default_network: bool = False,
) -> float:
    model: torch.nn.Module = (
        _default_model(channels_last) if default_network else _model(channels_last)
    )
    if bf16:
        model = Autocast(model)
    batch = DEFAULT_BATCH if default_network else BATCH
    data = TensorData((x_uint8,), y, image_transform(pre, channels_last=channels_last))
    trainer = Trainer(epochs=1, batch_size=batch, device="cpu", threads=threads, weight_decay=1e-4)
    t0 = time.perf_counter()
    trainer.fit(model, F.cross_entropy, data)
    return (len(y) // batch) * batch / (time.perf_counter() - t0)


def _torch_kernels(fn, *args):  # type: ignore[no-untyped-def]
    """As on a machine without a C compiler: the first block runs torch's conv, max-pool and ReLU."""
    from dlpipe.models import native

    saved = native.load_stem()
    native._libs["stem"] = None
    try:
        return fn(*args)
    finally:
        native._libs["stem"] = saved


def _one_thread(fn, *args):  # type: ignore[no-untyped-def]
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(saved)


def flops_per_image() -> float:
    model = _seed_network()
    x = torch.randn(BATCH, 1, 28, 28)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), torch.zeros(BATCH, dtype=torch.long)).backward()
    return counter.get_total_flops() / BATCH


def conv_peak(repeats: int = 5) -> float:
    """GFLOP/s of the model's dominant layer, conv 32->64 3x3 on 13x13 maps, forward+backward, large batch."""
    conv = torch.nn.Conv2d(32, 64, 3)
    x = torch.randn(512, 32, 13, 13, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        conv(x).sum().backward()
    flops = counter.get_total_flops()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        conv(x).sum().backward()
        best = min(best, time.perf_counter() - t0)
    return flops / best / 1e9


def bf16_accuracy() -> dict[str, dict[str, float]]:
    from sklearn.datasets import load_digits

    import dlpipe as dl

    d = load_digits()
    ds = ImageDataset(d.images.astype(np.uint8)[:, None], d.target, name="digits")
    out = {}
    for precision in ("fp32", "bf16"):
        t0 = time.perf_counter()
        run = dl.train(
            ds,
            epochs=15,
            batch_size=64,
            learning_rate=3e-3,
            schedule="onecycle",
            precision=precision,
            progress="quiet",
            save=False,
        )
        out[precision] = {
            "test_accuracy": run.metrics["test"]["model"]["accuracy"],
            "train_seconds": run.metrics["image"]["train_seconds"],
            "wall_seconds": round(time.perf_counter() - t0, 1),
        }
    return out


def _data(images: int) -> tuple[torch.Tensor, torch.Tensor, ImagePreprocessor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x_uint8 = torch.randint(0, 256, (images, 1, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (images,), generator=g)
    pre = ImagePreprocessor.fit(x_uint8.numpy())
    return x_uint8, y, pre, torch.from_numpy(pre.normalise(x_uint8.numpy()))


def _seed_worker(conn, images: int) -> None:  # type: ignore[no-untyped-def]
    """The plain-PyTorch loops in their own process: nothing dlpipe's engine does to a process
    (malloc settings, thread counts) reaches them."""
    _, y, _, x_float = _data(images)
    while (job := conn.recv()) is not None:
        loop, threads = job
        torch.set_num_threads(threads)
        if loop == "seed":
            conn.send(seed_loop(x_float, y))
        elif loop == "seed-expert":
            conn.send(expert_loop(x_float, y, _seed_network(), BATCH))
        elif loop == "default-seed":
            conn.send(seed_loop(x_float, y, _default_network_plain(), DEFAULT_BATCH))
        else:  # "default-expert"
            conn.send(expert_loop(x_float, y, _default_model(False), DEFAULT_BATCH))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-seed-cnn", action="store_true", help="only the default CNN's rows")
    parser.add_argument("--skip-default-cnn", action="store_true", help="only the seed CNN's rows")
    args = parser.parse_args()
    x_uint8, y, pre, x_float = _data(args.images)
    import multiprocessing as mp

    conn, child = mp.get_context("spawn").Pipe()
    worker = mp.get_context("spawn").Process(
        target=_seed_worker, args=(child, args.images), daemon=True
    )
    worker.start()

    def run_seed(threads: int, loop: str = "seed") -> float:
        conn.send((loop, threads))
        return float(conn.recv())

    default_threads = torch.get_num_threads()
    modes = {
        "seed loop (DataLoader, Adam, .item() per step)": lambda: run_seed(default_threads),
        "seed loop, 1 thread": lambda: run_seed(1),
        "expert plain PyTorch": lambda: run_seed(default_threads, "seed-expert"),
        "expert plain PyTorch, 1 thread": lambda: run_seed(1, "seed-expert"),
        "bare f+b+step (pre-made float batches)": lambda: bare_steps(x_float, y),
        "bare f+b+step, 1 thread": lambda: _one_thread(bare_steps, x_float, y),
        "dlpipe engine (as dl.train: uint8, channels_last)": lambda: engine(x_uint8, y, pre),
        "dlpipe engine, 1 thread": lambda: engine(x_uint8, y, pre, threads=1),
        "dlpipe engine, torch's kernels (DLPIPE_NATIVE=0)": lambda: _torch_kernels(
            engine, x_uint8, y, pre
        ),
        "dlpipe engine, NCHW": lambda: engine(x_uint8, y, pre, channels_last=False),
        "dlpipe engine + bf16 autocast (--precision bf16)": lambda: engine(
            x_uint8, y, pre, bf16=True
        ),
    }
    default_modes = {
        "seed loop (DataLoader, Adam, .item() per step)": lambda: run_seed(
            default_threads, "default-seed"
        ),
        "seed loop, 1 thread": lambda: run_seed(1, "default-seed"),
        "expert plain PyTorch": lambda: run_seed(default_threads, "default-expert"),
        "expert plain PyTorch, 1 thread": lambda: run_seed(1, "default-expert"),
        "dlpipe engine (as dl.train)": lambda: engine(x_uint8, y, pre, default_network=True),
        "dlpipe engine, 1 thread": lambda: engine(x_uint8, y, pre, default_network=True, threads=1),
    }
    if args.skip_seed_cnn:
        modes = {}
    if args.skip_default_cnn:
        default_modes = {}
    every = {
        **{("seed", k): v for k, v in modes.items()},
        **{("default", k): v for k, v in default_modes.items()},
    }
    for fn in every.values():  # warm-up: allocator, kernels, the first torch.optim import
        fn()
    all_rates: dict[tuple[str, str], list[float]] = {k: [] for k in every}
    for _ in range(args.rounds):  # interleaved: a burst of load hits every mode of a round
        for key, fn in every.items():
            all_rates[key].append(fn())
    rates = {k: v for (net, k), v in all_rates.items() if net == "seed"}
    default_rates = {k: v for (net, k), v in all_rates.items() if net == "default"}
    conn.send(None)
    worker.join()
    flops = flops_per_image()
    peak = conv_peak()
    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads by default, {os.cpu_count()} cores, load average {load:.1f}; "
        f"{args.images} images of 28x28x1, batch {BATCH}, {args.rounds} rounds"
    )
    print(
        f"seed CNN: {flops / 1e6:.2f} MFLOP per image forward+backward (FlopCounterMode); conv 32->64 peak here: {peak:.0f} GFLOP/s"
    )
    if rates:
        _seed_table(rates, flops, peak)
    if default_rates:
        _default_table(default_rates, args.rounds)
    if not args.skip_accuracy:
        acc = bf16_accuracy()
        print("digits, default CNN, 15 epochs, onecycle 3e-3, seed 0:")
        for k, v in acc.items():
            print(
                f"  {k}: test accuracy {v['test_accuracy']:.4f}, train {v['train_seconds']:.1f} s"
            )


def _default_table(rates: dict[str, list[float]], rounds: int) -> None:
    """The default CNN's rows: median and range over rounds, ratios of medians against the seed loop
    (and the expert loop) at their better thread count."""
    med = {k: statistics.median(v) for k, v in rates.items()}
    seed = max(med["seed loop (DataLoader, Adam, .item() per step)"], med["seed loop, 1 thread"])
    expert = max(med["expert plain PyTorch"], med["expert plain PyTorch, 1 thread"])
    print(
        f"default CNN (conv32-pool-BN-ReLU, conv64-pool-BN-ReLU, dense 128), batch {DEFAULT_BATCH}, "
        f"{rounds} rounds: median img/s [range], ratios of medians"
    )
    print(f"{'mode':<52}{'median':>9}{'range':>17}{'vs seed':>9}{'vs expert':>11}")
    for name, values in rates.items():
        rng = f"[{min(values):.0f}-{max(values):.0f}]"
        print(
            f"{name:<52}{med[name]:>9.0f}{rng:>17}{med[name] / seed:>8.2f}x{med[name] / expert:>10.2f}x"
        )


def _seed_table(rates: dict[str, list[float]], flops: float, peak: float) -> None:
    """The seed CNN's rows under the one protocol (benchmarks/RESULTS.md): median and range over the
    interleaved rounds, ratios of medians against the seed loop at its better thread count and against
    the bare forward+backward+step at its better count; GFLOP/s from the median."""
    med = {k: statistics.median(v) for k, v in rates.items()}
    modes = list(rates)
    seed = max(med[modes[0]], med["seed loop, 1 thread"])
    bare = max(med["bare f+b+step (pre-made float batches)"], med["bare f+b+step, 1 thread"])
    print(
        f"{'mode':<52}{'median':>9}{'range':>15}{'GFLOP/s':>9}{'% peak':>8}{'vs seed':>9}{'vs bare':>9}"
    )
    for name, values in rates.items():
        gf = med[name] * flops / 1e9
        rng = f"{min(values):.0f}-{max(values):.0f}"
        print(
            f"{name:<52}{med[name]:>9.0f}{rng:>15}{gf:>9.1f}{100 * gf / peak:>7.0f}%"
            f"{med[name] / seed:>8.2f}x{med[name] / bare:>8.2f}x"
        )


if __name__ == "__main__":
    main()
