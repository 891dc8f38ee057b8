"""RL bundles: manifest.json + weights.safetensors (kind "rl"), round trips, damage, evaluate, play."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dlpipe.core.errors import BundleError, InvalidInputError
from dlpipe.rl import load_agent, train_agent


def test_tabular_bundle_round_trip(frozenlake_run, tmp_path):
    bundle = tmp_path / "fl" / "bundle"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert (
        manifest["kind"] == "rl"
        and manifest["algo"] == "qlearning"
        and manifest["format"] == "dlpipe-bundle"
    )
    assert manifest["env"]["env_id"] == "FrozenLake-v1" and manifest["env"]["env_kwargs"] == {
        "is_slippery": False
    }
    assert set(manifest["weights"]["tensors"]) == {"q_table"}
    agent = load_agent(bundle)
    assert np.array_equal(agent.q_table, frozenlake_run.agent.q_table)
    result = agent.evaluate(episodes=100)
    assert (
        result["mean_return"] == 1.0 and result["random"]["mean_return"] < 0.1 and result["solved"]
    )


def test_run_folder_holds_history_and_threshold(frozenlake_run, tmp_path):
    run = tmp_path / "fl"
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["episode", "return", "length", "steps"] and "epsilon" in header
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["reward_threshold"] == 0.7 and metrics["evaluation"]["mean_return"] == 1.0
    assert "algo: qlearning" in (run / "config.yaml").read_text().splitlines()
    assert (run / "evaluations.csv").read_text().startswith("steps,episodes,mean_return")


def test_network_bundle_round_trip_gives_the_same_actions(tmp_path):
    run = train_agent(
        "CartPole-v1",
        "a2c",
        steps=400,
        seed=1,
        eval_every=0,
        eval_episodes=2,
        n_envs=4,
        out=tmp_path / "cp",
    )
    agent = load_agent(tmp_path / "cp" / "bundle")
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    assert np.array_equal(agent.act(x), run.agent.act(x))
    assert agent.model_spec["family"] == "rl-actor-critic"
    assert (
        agent.evaluation(episodes=3).returns.tolist()
        == run.agent.evaluation(episodes=3).returns.tolist()
    )


def test_damaged_or_foreign_bundles_are_refused(frozenlake_run, tmp_path):
    bundle = tmp_path / "fl" / "bundle"
    with pytest.raises(BundleError, match="is not a dlpipe bundle"):
        load_agent(tmp_path)
    weights = bundle / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte in the Q-table
    weights.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="do not match their recorded checksum"):
        load_agent(bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["kind"] = "table"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="is of kind 'table', not an RL agent"):
        load_agent(bundle)


def test_play_writes_a_gif(frozenlake_run, tmp_path):
    out = load_agent(tmp_path / "fl" / "bundle").play(tmp_path / "play.gif", episodes=2)
    with Image.open(out) as gif:
        assert gif.format == "GIF" and gif.n_frames == 2 * 7  # reset frame + 6 steps per episode
        assert gif.size[0] > 100


def test_play_refuses_an_env_that_cannot_render(norender_env_id, tmp_path):
    run = train_agent(
        norender_env_id,
        "qlearning",
        steps=200,
        seed=0,
        eval_every=0,
        eval_episodes=5,
        out=tmp_path / "nr",
    )
    assert run.metrics["evaluation"]["mean_return"] == 1.0
    with pytest.raises(
        InvalidInputError,
        match=r"'DlpipeTestNoRender-v0' cannot render frames \(its render modes: none\)",
    ):
        load_agent(tmp_path / "nr" / "bundle").play(tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()


@pytest.mark.slow
def test_report_draws_the_return_curve_with_the_threshold(frozenlake_run, tmp_path):
    page = frozenlake_run.report()
    html = page.read_text()
    assert "Reinforcement learning" in html and "solve threshold 0.7" in html.lower()
    assert (tmp_path / "fl" / "plots" / "rl_returns.png").stat().st_size > 1000
