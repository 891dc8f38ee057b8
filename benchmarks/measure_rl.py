"""Acceptance measurement for dlpipe.rl on CartPole-v1 (not part of the test suite).

For each seed: train with the library defaults, stopping once a periodic check passes the
acceptance protocol (mean return >= 475 over 100 greedy episodes, seeds 10000..10099), then
re-evaluate the kept policy on those 100 episodes. Records env steps to solve and wall time.

    .venv/bin/python benchmarks/measure_rl.py                       # dqn (100k), a2c and reinforce (300k), seeds 0-4
    .venv/bin/python benchmarks/measure_rl.py --algos dqn --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from dlpipe.rl import train_agent
from dlpipe.rl.train import DEFAULT_STEPS


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--algos", nargs="+", default=["dqn", "a2c", "reinforce"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
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
            started, cpu = time.perf_counter(), time.process_time()
            run = train_agent("CartPole-v1", algo, seed=seed)
            ev = run.metrics["evaluation"]
            row = {
                "algo": algo,
                "seed": seed,
                "budget": DEFAULT_STEPS[algo],
                "solved_at": run.metrics["solved_at"],
                "steps": run.metrics["steps"],
                "train_s": run.metrics["train_time_s"],
                "total_s": round(time.perf_counter() - started, 1),
                "cpu_s": round(time.process_time() - cpu, 1),
                "mean_return_100": ev["mean_return"],
                "solved": ev["mean_return"] >= 475.0,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        "\n| algo | seed | steps to solve (budget) | train wall time s | mean return (100 greedy episodes) | solved |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['algo']} | {r['seed']} | {r['solved_at'] or 'not solved'} ({r['budget']:,}) | {r['train_s']:.1f} | {r['mean_return_100']:.1f} | {'yes' if r['solved'] else 'no'} |"
        )
    for algo in args.algos:
        mine = [r for r in rows if r["algo"] == algo]
        print(f"{algo}: {sum(r['solved'] for r in mine)}/{len(mine)} seeds solved")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
