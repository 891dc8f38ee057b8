"""Samples/s of the engine on 1 vs 2 processes (gloo, CPU), same global batch and data.

Each configuration runs the Trainer directly (no CLI start-up): one process, then two ranks
started with torch.multiprocessing on a free port. Reports samples/s for the training loop only
and the per-step time of the gradient all-reduce measured inside the ranks.

    .venv/bin/python benchmarks/ddp_scaling.py [--rows 20000] [--epochs 3] [--batch 256]
"""

from __future__ import annotations

import argparse
import os
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from dlpipe.tasks.losses import BCEWithLogitsLoss
from dlpipe.training import TensorData, Trainer
from dlpipe.training import trainer as trainer_module


def make_data(rows: int):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 64, generator=g)
    y = (x[:, :8].sum(1, keepdim=True) > 0).float()
    return x, y


def run(rank: int, world: int, port: int, args, out) -> None:
    if world > 1:
        os.environ.update(
            MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world)
        )
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 1)
    )
    x, y = make_data(args.rows)
    reduce_time = [0.0, 0]
    original = trainer_module._all_reduce_grads

    def timed(opt, share):
        t = time.perf_counter()
        original(opt, share)
        reduce_time[0] += time.perf_counter() - t
        reduce_time[1] += 1

    trainer_module._all_reduce_grads = timed
    t = Trainer(epochs=args.epochs, batch_size=args.batch, device="cpu", threads=1)
    start = time.perf_counter()
    t.fit(model, BCEWithLogitsLoss(), TensorData((x,), y))
    elapsed = time.perf_counter() - start
    if rank == 0:
        out.put((elapsed, reduce_time[0] / max(reduce_time[1], 1)))
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    results = {}
    for world in (1, 2):
        q = ctx.Queue()
        procs = [
            ctx.Process(target=run, args=(r, world, free_port() if world > 1 else 0, args, q))
            for r in range(world)
        ]
        if world > 1:  # both ranks need the same port
            port = free_port()
            procs = [ctx.Process(target=run, args=(r, world, port, args, q)) for r in range(world)]
        for p in procs:
            p.start()
        results[world] = q.get(timeout=600)
        for p in procs:
            p.join()
    samples = args.rows * args.epochs
    print(
        f"MLP 64-256-128-1, {args.rows} rows, batch {args.batch} (global), {args.epochs} epochs, 1 thread per process"
    )
    print(f"{'processes':<10}{'samples/s':>12}{'speed-up':>10}{'all-reduce ms/step':>20}")
    for world, (elapsed, red) in results.items():
        print(
            f"{world:<10}{samples / elapsed:>12,.0f}{results[1][0] / elapsed:>10.2f}{red * 1e3 if world > 1 else 0:>20.3f}"
        )


if __name__ == "__main__":
    main()
