"""Q-learning on FrozenLake: a table of action values learnt from play, beside value iteration (dlpipe's API).

The environment: Gymnasium's FrozenLake-v1, a 4x4 frozen lake (S start, F ice, H hole, G goal). The
ice is slippery: the agent moves where it meant to only a third of the time, so even the best
policy falls into a hole about one time in three.

What it shows: `train_agent(env, "qlearning")` learns a Q-table from episodes (epsilon-greedy,
one-step TD update Q(s, a) += alpha * (r + gamma * max Q(s', .) - Q(s, a))), and
`train_agent(env, "value_iteration")` plans the same table from the lake's known transition
probabilities without playing. Both are scored on the same 100 fresh greedy episodes beside a random
policy, and their policies are printed as arrows. The Q-learning run is saved as a run folder
(report.html, a bundle) and loaded back.

    python examples/11_qlearning.py           # 200,000 steps of Q-learning
    python examples/11_qlearning.py --quick   # 5,000 steps, 20 evaluation episodes

Full run (seed 0): Q-learning finds value iteration's policy (the same arrows); both reach the goal
in 0.67 of 100 fresh episodes, the random policy in 0.03.
"""

import os
import sys
from pathlib import Path

import numpy as np

from dlpipe.rl import load_agent, train_agent

quick = "--quick" in sys.argv or os.environ.get("DLPIPE_EXAMPLE_QUICK") == "1"
episodes = 20 if quick else 100
ARROWS = np.array(["<", "v", ">", "^"])  # FrozenLake's actions 0-3
LAKE = "SFFFFHFHFFFHHFFG"


def show(q_table):
    """The greedy action per tile; holes and the goal have no action."""
    arrows = ARROWS[q_table.argmax(axis=1)]
    return "\n".join(
        " ".join(
            a if LAKE[r * 4 + c] in "SF" else LAKE[r * 4 + c]
            for c, a in enumerate(arrows[r * 4 : r * 4 + 4])
        )
        for r in range(4)
    )


# 1. Learn from play. gamma close to 1: reaching the goal late is almost as good as early.
run = train_agent(
    "FrozenLake-v1",
    "qlearning",
    steps=5_000 if quick else 200_000,
    seed=0,
    eval_episodes=episodes,
    gamma=0.99,
    learning_rate=0.1,
)
print(run.summary())
print(show(run.agent.q_table))

# 2. Plan from the model: no episodes, sweeps of the Bellman optimality update until it settles.
plan = train_agent("FrozenLake-v1", "value_iteration", gamma=0.99, eval_episodes=episodes)
print(f"value iteration: {plan.metrics['sweeps']} sweeps")
print(show(plan.agent.q_table))

# 3. Save the learnt agent and load it back.
path = run.save(Path("examples-output") / "qlearning_run", overwrite=True)
agent = load_agent(path / "bundle")
print(f"loaded agent: greedy action in the start state = {ARROWS[agent.predict(0)]}")

q_success = run.metrics["evaluation"]["mean_return"]
print(
    f"random policy success rate: {run.metrics['test']['baselines']['random']['mean_return']:.2f}"
)
print(f"value iteration success rate: {plan.metrics['evaluation']['mean_return']:.2f}")
print(f"Q-learning success rate: {q_success:.2f}")
