"""CartPole-v1 DQN: dlpipe beside Stable-Baselines3, same seeds, same solve protocol, one run.

Both agents are checked every 5,000 env steps on 10 greedy episodes; when those reach 475, the
100-episode greedy evaluation on the *selection* block (seeds 10000..10099, dlpipe.rl's evaluation
core for both) decides, and a pass stops training: "steps to solve" is that step, "wall time" the
training time up to it (evaluations included, the same for both), beside the process CPU time
(steadier than wall time on a shared CPU). The figure reported is the kept policy's greedy mean over
100 *fresh* episodes (seeds 20000..20099) that no check played (issue #21). For SB3 the kept policy
is the final one (training stops at the passing check; without a pass, the last weights). Budget
100,000 env steps. torch runs on one thread.

SB3 uses the RL Zoo's tuned CartPole-v1 DQN settings (lr 2.3e-3, batch 64, buffer 100k,
learning_starts 1000, target_update_interval 10, train_freq 256, gradient_steps 128,
exploration_fraction 0.16, final eps 0.04, net [256, 256]); dlpipe uses its defaults.

    .venv/bin/python benchmarks/rl_cartpole.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from dlpipe.rl import env_info, make_env, train_agent
from dlpipe.rl.rollout import EVAL_SEED, PeriodicEvaluator, evaluate_policy

BUDGET = 100_000
EVERY = 5_000


def run_sb3(seed: int) -> dict[str, object]:
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    info = env_info(make_env("CartPole-v1"), "CartPole-v1")

    class Check(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.evaluator: PeriodicEvaluator | None = None

        def _on_training_start(self) -> None:
            model = self.model
            self.evaluator = PeriodicEvaluator(
                info, lambda x: model.predict(x, deterministic=True)[0], EVERY, threshold=475.0
            )

        def _on_step(self) -> bool:
            assert self.evaluator is not None
            if self.evaluator.due(self.num_timesteps):
                return not self.evaluator.evaluate(self.num_timesteps, dict)
            return True

    started, cpu = time.perf_counter(), time.process_time()
    model = DQN(
        "MlpPolicy",
        make_env("CartPole-v1"),
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs={"net_arch": [256, 256]},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    check = Check()
    model.learn(BUDGET, callback=check)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert check.evaluator is not None
    fresh = evaluate_policy(
        info, lambda x: model.predict(x, deterministic=True)[0], 100, EVAL_SEED
    ).mean_return
    return {
        "library": "stable-baselines3",
        "seed": seed,
        "solved_at": check.evaluator.solved_at,
        "steps": int(model.num_timesteps),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "mean_return_100": fresh,
    }


def run_dlpipe(seed: int) -> dict[str, object]:
    started, cpu = time.perf_counter(), time.process_time()
    run = train_agent("CartPole-v1", "dqn", steps=BUDGET, seed=seed, eval_every=EVERY)
    cpu = time.process_time() - cpu
    return {
        "library": "dlpipe",
        "seed": seed,
        "solved_at": run.metrics["solved_at"],
        "steps": run.metrics["steps"],
        "wall_s": round(run.metrics["train_time_s"], 1),
        "cpu_s": round(cpu, 1),
        "mean_return_100": run.metrics["evaluation"]["mean_return"],
        "total_s": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for seed in args.seeds:
        for fn in (run_dlpipe, run_sb3):
            row = fn(seed)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(
        "\n| library | seed | steps to solve (budget 100k) | train wall time s | CPU time s | mean return, 100 fresh greedy episodes (seeds 20000-20099) |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['library']} | {r['seed']} | {r['solved_at'] or 'not solved'} | {r['wall_s']} | {r['cpu_s']} | {r['mean_return_100']} |"
        )
    for lib in ("dlpipe", "stable-baselines3"):
        mine = [r for r in rows if r["library"] == lib]
        solved = [r for r in mine if r["solved_at"]]
        med_steps = np.median([r["solved_at"] for r in solved]) if solved else float("nan")
        med_wall = np.median([r["wall_s"] for r in solved]) if solved else float("nan")
        med_cpu = np.median([r["cpu_s"] for r in solved]) if solved else float("nan")
        print(
            f"{lib}: {len(solved)}/{len(mine)} solved; median steps to solve {med_steps:,.0f}, median wall time {med_wall:.1f} s, CPU {med_cpu:.1f} s"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
