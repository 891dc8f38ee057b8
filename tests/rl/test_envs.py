from __future__ import annotations

import numpy as np
import pytest

from dlpipe.core.errors import InvalidConfigError
from dlpipe.rl import env_info, evaluate_policy, make_env, random_policy
from dlpipe.rl.envs import EnvPool, encode_obs


def test_unknown_env_id_lists_close_matches():
    with pytest.raises(
        InvalidConfigError, match=r"unknown environment id 'CartPol-v1'.*close matches: CartPole-v1"
    ):
        make_env("CartPol-v1")
    with pytest.raises(InvalidConfigError, match="close matches: .*FrozenLake"):
        make_env("frozenlake")


def test_bad_env_option_is_one_sentence():
    with pytest.raises(InvalidConfigError, match=r"does not accept the options \['slippery'\]"):
        make_env("FrozenLake-v1", {"slippery": False})


def test_spaces_are_read_from_the_env():
    cart = env_info(make_env("CartPole-v1"), "CartPole-v1")
    assert cart.obs == {"type": "box", "shape": [4]} and cart.action == {"type": "discrete", "n": 2}
    assert (
        cart.reward_threshold == 475.0
        and cart.max_episode_steps == 500
        and "rgb_array" in cart.render_modes
    )
    pend = env_info(make_env("Pendulum-v1"), "Pendulum-v1")
    assert (
        not pend.discrete_actions and pend.action["low"] == [-2.0] and pend.action["high"] == [2.0]
    )
    lake = env_info(make_env("FrozenLake-v1"), "FrozenLake-v1")
    assert lake.obs_dim == 16
    assert encode_obs(3, lake).tolist() == np.eye(16, dtype=np.float32)[3].tolist()
    assert encode_obs([0, 5], lake).shape == (2, 16)


def test_evaluation_is_reproducible_with_fixed_seeds():
    info = env_info(make_env("CartPole-v1"), "CartPole-v1")
    a = evaluate_policy(info, random_policy(info, 1), episodes=20, seed=5, n_envs=4)
    b = evaluate_policy(info, random_policy(info, 1), episodes=20, seed=5, n_envs=4)
    assert a.returns.tolist() == b.returns.tolist() and len(a.returns) == 20
    assert (a.lengths == a.returns).all()  # CartPole: +1 per step


def test_env_pool_resets_finished_copies_and_reports_episodes():
    pool = EnvPool("CartPole-v1", 3, seed=0)
    finished = []
    for _ in range(200):
        x, r, term, trunc, final, done = pool.step(
            np.zeros(3, dtype=np.int64)
        )  # always push left: short episodes
        finished += done
        assert x.shape == (3, 4) and final.shape == (3, 4)
    pool.close()
    assert len(finished) >= 3 and all(length == ret for ret, length in finished)


def test_public_names_resolve():
    import dlpipe.rl

    for name in dlpipe.rl.__all__:
        assert getattr(dlpipe.rl, name) is not None, name


@pytest.mark.service
def test_the_rl_commands_load_torch_and_gymnasium_lazily():
    import subprocess
    import sys

    code = "import sys, dlpipe.cli.rl; print('torch' in sys.modules, 'gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False False"
