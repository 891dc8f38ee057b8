"""DQN on CartPole: a neural network replaces the Q-table when the states are continuous (dlpipe's API).

The environment: Gymnasium's CartPole-v1. Keep a pole upright on a moving cart; +1 per step, at most
500 per episode; "solved" means a mean of 475 over 100 episodes.

What it shows: `train_agent("CartPole-v1", "dqn")` — a Q-network (two hidden layers of 128), a replay
buffer, a target network copied every 500 steps, an epsilon-greedy schedule, the Huber loss and
double DQN. Every 5,000 steps ten greedy episodes check progress; training stops once a
100-episode check passes, and the best checked weights are kept. The reported figure comes from 100
*fresh* episodes the checks never saw, beside a random policy. The run is saved (report.html with
the return curve, a bundle) and the agent is loaded back to act.

    python examples/12_dqn.py           # up to 100,000 steps (stops when solved)
    python examples/12_dqn.py --quick   # 2,000 steps, 10 evaluation episodes, no periodic checks

Full run (seed 0): solved at 55,000 env steps (116 CPU-seconds); mean return 500 on the 100 fresh
episodes (random policy 22.8), and the loaded agent's own episode returns 500.
"""

import os
import sys
from pathlib import Path

import gymnasium as gym

from dlpipe.rl import load_agent, train_agent

quick = "--quick" in sys.argv or os.environ.get("DLPIPE_EXAMPLE_QUICK") == "1"

options = {"eval_every": 0} if quick else {}  # quick: no periodic checks, keep the last weights
run = train_agent(
    "CartPole-v1",
    "dqn",
    steps=2_000 if quick else 100_000,
    seed=0,
    eval_episodes=10 if quick else 100,
    out=Path("examples-output") / "dqn_run",
    overwrite=True,
    report=not quick,  # the HTML report draws plots for seconds: left out of the quick run
    **options,
)
print(run.summary())

# The saved agent plays one episode: observation in, greedy action out.
agent = load_agent(run.path / "bundle")
env = gym.make("CartPole-v1")
observation, _ = env.reset(seed=123)
total, done = 0.0, False
while not done:
    observation, reward, terminated, truncated, _ = env.step(int(agent.predict(observation)))
    total += reward
    done = terminated or truncated
env.close()
print(f"one episode with the loaded agent, return: {total:.0f}")
print(f"random policy mean return: {run.metrics['test']['baselines']['random']['mean_return']:.1f}")
print(f"DQN mean return: {run.metrics['evaluation']['mean_return']:.1f}")
