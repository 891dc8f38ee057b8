"""Issue #21: re-check two defaults on data that was not used to choose them.

1. ``relative`` forecasting windows (default True) were chosen on statsmodels' sunspots, co2, nile
   and macrodata (commit 479ced5, one seed). Re-checked here on two other statsmodels series,
   elec_equip (euro-area electrical equipment orders, monthly 1995-2016, 257 rows) and
   interest_inflation's R (Danish bond rate, quarterly 1972-1998, 107 rows): default settings
   with ``relative=True`` against ``relative=False``, seeds 0-2, M4's MASE on the run's own test
   windows.
2. DQN's defaults (``dlpipe/rl/dqn.py``) were chosen and reported on CartPole-v1. Re-checked here on
   Acrobot-v1 (solve threshold -100, Gymnasium's ``reward_threshold``): default learning settings,
   seeds 0-2, a small step budget, greedy mean return on the fresh episode block (seeds 20000..)
   beside a uniformly random policy on the same seeds.

    nice -n 5 .venv/bin/python benchmarks/recheck_defaults_b.py --part series
    nice -n 5 .venv/bin/python benchmarks/recheck_defaults_b.py --part dqn --steps 50000
"""

from __future__ import annotations

import argparse
import statistics
import time

import dlpipe as dl


def series_frames():
    import pandas as pd
    from statsmodels.datasets import elec_equip, interest_inflation

    equip = elec_equip.load().data
    equip = equip.rename(columns={equip.columns[0]: "orders"}).rename_axis("date").reset_index()
    rates = interest_inflation.load_pandas().data  # year, quarter, Dp, R
    rates["date"] = pd.PeriodIndex.from_fields(
        year=rates["year"].astype(int), quarter=rates["quarter"].astype(int), freq="Q"
    ).to_timestamp()
    return [("elec_equip", equip, "orders"), ("interest_inflation R", rates[["date", "R"]], "R")]


def run_series(seeds: list[int], threads: int) -> None:
    print("| series | relative | seed | test windows | model MASE | naive MASE | seconds |")
    print("|---|---|---|---|---|---|---|")
    summary: dict[tuple[str, bool], list[float]] = {}
    for name, frame, target in series_frames():
        for relative in (True, False):
            for seed in seeds:
                t0 = time.perf_counter()
                run = dl.train(
                    frame,
                    target,
                    task="forecast",
                    time_column="date",
                    relative=relative,
                    seed=seed,
                    progress="quiet",
                    save=False,
                    name=f"{name}-{relative}-{seed}",
                    threads=threads,
                )
                test = run.metrics["test"]
                mase = test["model"]["mase"]
                summary.setdefault((name, relative), []).append(mase)
                print(
                    f"| {name} | {relative} | {seed} | {test['windows']} | {mase:.3f} | "
                    f"{test['baselines']['naive']['mase']:.3f} | {time.perf_counter() - t0:.0f} |",
                    flush=True,
                )
    print()
    for (name, relative), v in summary.items():
        sd = statistics.stdev(v) if len(v) > 1 else 0.0
        print(f"{name} relative={relative}: MASE {statistics.mean(v):.3f} ± {sd:.3f} {v}")


def run_dqn(env_id: str, seeds: list[int], steps: int, eval_episodes: int) -> None:
    from dlpipe.rl import train_agent

    print("| env | seed | steps | greedy mean (fresh 20000..) | random mean | solved | seconds |")
    print("|---|---|---|---|---|---|---|")
    means = []
    for seed in seeds:
        t0 = time.perf_counter()
        run = train_agent(
            env_id,
            "dqn",
            steps=steps,
            seed=seed,
            eval_episodes=eval_episodes,
            report=False,
        )
        ev = run.metrics["evaluation"]
        means.append(ev["mean_return"])
        print(
            f"| {env_id} | {seed} | {steps} | {ev['mean_return']:.1f} | "
            f"{run.metrics['random']['mean_return']:.1f} | {run.metrics.get('solved')} | "
            f"{time.perf_counter() - t0:.0f} |",
            flush=True,
        )
    sd = statistics.stdev(means) if len(means) > 1 else 0.0
    print(f"\n{env_id} DQN defaults: {statistics.mean(means):.1f} ± {sd:.1f} {means}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=["series", "dqn"], required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--env", default="Acrobot-v1")
    p.add_argument("--steps", type=int, default=50_000)
    p.add_argument("--eval-episodes", type=int, default=100)
    a = p.parse_args()
    if a.part == "series":
        run_series(a.seeds, a.threads)
    else:
        run_dqn(a.env, a.seeds, a.steps, a.eval_episodes)


if __name__ == "__main__":
    main()
