"""Acceptance measurement for dlpipe.rl on CartPole-v1 (not part of the test suite).

The protocol (issue #21): two disjoint blocks of episode seeds. Every ``eval_every`` env steps,
10 greedy episodes of the *selection* block (seeds 10000..10009); when their mean reaches 475, the
100-episode selection evaluation (seeds 10000..10099) decides, and a pass stops training and keeps
those weights. The figure reported is the kept policy's greedy mean over 100 *fresh* episodes
(seeds 20000..20099) that no check ever played. "Solved" means that fresh mean is >= 475.

For each seed: train with the library defaults (one seed at a time, one process), record env steps
until the selection check passed, train wall time, process CPU time, the selection mean, the fresh
mean, and the 1-minute load average before and after (the machine is shared).

    nice -n 5 .venv/bin/python benchmarks/measure_rl.py --algos ppo --seeds 0 1 2   # issue #22: PPO, budget 300k
    nice -n 5 .venv/bin/python benchmarks/measure_rl.py --algos dqn --seeds 0 1 2   # issue #21: DQN re-measured
    .venv/bin/python benchmarks/measure_rl.py                                       # dqn, ppo, a2c, reinforce, seeds 0-4
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch

from dlpipe.rl import train_agent
from dlpipe.rl.train import DEFAULT_STEPS


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def measure(algo: str, seed: int, steps: int | None = None) -> dict[str, object]:
    """One training run under the two-block protocol; the row of the results table."""
    load_before = _load()
    started, cpu = time.perf_counter(), time.process_time()
    run = train_agent("CartPole-v1", algo, seed=seed, steps=steps, report=False)
    m = run.metrics
    selection = m["selection"] or {}
    return {
        "algo": algo,
        "seed": seed,
        "budget": steps or DEFAULT_STEPS[algo],
        "solved_at": m["solved_at"],
        "steps": m["steps"],
        "train_s": round(m["train_time_s"], 1),
        "total_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "selection_seeds": selection.get("seeds"),
        "selection_mean": selection.get("mean_return"),
        "report_seeds": m["evaluation"]["seeds"],
        "report_mean": m["evaluation"]["mean_return"],
        "report_min": m["evaluation"]["min_return"],
        "solved": bool(m["solved"]),
        "load_before": load_before,
        "load_after": _load(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algos", nargs="+", default=["dqn", "ppo", "a2c", "reinforce"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--steps", type=int, default=None, help="budget (default: the algorithm's)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (small networks: 1 is fastest on a shared CPU)",
    )
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for algo in args.algos:
        for seed in args.seeds:
            row = measure(algo, seed, args.steps)
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.json:  # after every seed, so a run cut short keeps what it measured
                with open(args.json, "w", encoding="utf-8") as fh:
                    json.dump(rows, fh, indent=2)
    print(
        "\n| algo | seed | env steps to solve (budget) | train wall s | CPU s | selection mean (seeds) "
        "| reported mean, fresh episodes (seeds) | solved | load before/after |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        sel = "-" if r["selection_mean"] is None else f"{r['selection_mean']:.1f}"
        print(
            f"| {r['algo']} | {r['seed']} | {r['solved_at'] or 'not solved'} ({r['budget']:,}) | {r['train_s']:.1f} "
            f"| {r['cpu_s']:.1f} | {sel} ({r['selection_seeds']}) | {r['report_mean']:.1f} ({r['report_seeds']}) "
            f"| {'yes' if r['solved'] else 'no'} | {r['load_before']} / {r['load_after']} |"
        )
    for algo in args.algos:
        mine = [r for r in rows if r["algo"] == algo]
        print(
            f"{algo}: {sum(bool(r['solved']) for r in mine)}/{len(mine)} seeds solved on fresh episodes"
        )


if __name__ == "__main__":
    main()
