"""``Agent``: a trained policy (network or Q-table) with its environment, saved as a bundle.

    bundle/
      manifest.json        kind "rl": algorithm, environment id and spaces, network spec, config, metrics
      weights.safetensors  the policy/Q network's state_dict, or the tabular Q-table

No pickle: loading reads JSON and raw tensors and rebuilds the network from its spec.

An ``Agent`` is a :class:`dlpipe.Bundle` of kind "rl", so ``dlpipe.load_bundle`` returns one for an RL
bundle (its loader is registered in ``dlpipe._builtins``) and reports can describe its network; its
``predict`` and ``evaluate`` take observations and episode counts, not table rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dlpipe.bundle.bundle import (
    FORMAT,
    Bundle,
    load_checked_state,
    make_manifest,
    read_manifest,
    read_weights,
    sha256_file,
)
from dlpipe.bundle.card import write_model_card
from dlpipe.core.errors import BundleError, InvalidConfigError, InvalidInputError
from dlpipe.core.files import atomic_dir, private_tmp, write_json
from dlpipe.rl.envs import EnvInfo, encode_obs, make_env
from dlpipe.rl.networks import QTable, build_network
from dlpipe.rl.rollout import EVAL_SEED, Evaluation, evaluate_policy, one_thread, random_policy

__all__ = ["Agent", "load_agent", "load_rl_bundle"]

MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"


class Agent(Bundle):
    """A greedy policy over one environment: a network (``model``) or a Q-table (``q_table``).

    For a Q-table agent ``model`` is the table as a bias-free linear layer over one-hot states
    (what a report draws); acting reads ``q_table`` itself.

    Example:
        >>> agent = dlpipe.load_bundle("runs/frozenlake/bundle")  # doctest: +SKIP
        >>> agent.predict(0), agent.evaluate(episodes=10)["mean_return"]  # doctest: +SKIP
        (array(2), 1.0)
    """

    def __init__(
        self,
        info: EnvInfo,
        algo: str,
        model_spec: dict[str, Any],
        model: nn.Module | None = None,
        q_table: np.ndarray | None = None,
        config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        # Bundle.__init__ is not called: an agent has no table task or preprocessor, its manifest is built from its parts
        self.info = info
        self.algo = algo
        self.model_spec = model_spec
        self.q_table = q_table
        if model is None and q_table is not None:
            model = QTable.from_array(q_table)
        if model is None:
            raise InvalidConfigError(
                "an Agent needs a `model` (a policy or Q-network) or a `q_table`; pass one of them."
            )
        self.model = model.eval()
        self.config = dict(config or {})
        self.metrics = dict(metrics or {})

    def __repr__(self) -> str:
        return f"Agent(algo={self.algo!r}, env={self.info.env_id!r})"

    @property  # type: ignore[override]  # a Bundle reads its metrics from the manifest; an agent's are set after training
    def metrics(self) -> dict[str, Any]:
        return self._metrics

    @metrics.setter
    def metrics(self, value: dict[str, Any]) -> None:
        self._metrics = dict(value or {})

    @property  # built from the agent's parts, so it is never stale
    def manifest(self) -> dict[str, Any]:  # type: ignore[override]
        return make_manifest(
            kind="rl",
            algo=self.algo,
            env=self.info.to_dict(),
            model_spec=self.model_spec,
            config=self.config,
            metrics=self.metrics,
        )

    @property
    def task(self) -> Any:  # type: ignore[override]
        """An agent has no supervised task: code made for model bundles (serving rows, export, evaluate on a
        table) stops here with one sentence instead of failing deeper in."""
        raise BundleError(
            f"this bundle is an RL agent ({self.algo} on {self.info.env_id!r}, kind 'rl'), not a model of a table, images or a series, "
            "so it has no task to predict rows with; use `dlpipe rl evaluate` / `dlpipe rl play`, or agent.predict(observations) in Python."
        )

    @property
    def preprocessor(self) -> Any:  # type: ignore[override]
        return self.task

    @property
    def classes(self) -> list[Any] | None:
        return None

    @property
    def input_columns(self) -> list[str]:
        return []

    # ------------------------------------------------------------------ acting
    def act(self, x: np.ndarray) -> np.ndarray:
        """Greedy actions for a batch of encoded observations (B, D)."""
        if self.q_table is not None:
            return self.q_table[np.asarray(x).argmax(axis=1)].argmax(
                axis=1
            )  # one-hot rows -> states
        assert self.model is not None
        with torch.inference_mode():
            out = self.model.greedy(torch.as_tensor(x, dtype=torch.float32))  # type: ignore[operator]
        actions = out.numpy()
        if not self.info.discrete_actions:
            low, high = np.asarray(self.info.action["low"]), np.asarray(self.info.action["high"])
            return (
                np.clip(actions, low, high)
                .astype(np.float32)
                .reshape(len(x), *self.info.action["shape"])
            )
        return actions

    def predict(self, observations: Any) -> np.ndarray:  # type: ignore[override]  # observations in, actions out
        """Greedy actions for raw observations as the environment returns them: one observation gives one
        action, a stack of them (first axis) gives one action each.

        Example:
            >>> agent.predict(0)  # FrozenLake: state 0 -> move right  # doctest: +SKIP
            array(2)
        """
        if isinstance(observations, (str, Path)) or hasattr(observations, "columns"):
            self.task  # noqa: B018 - a data file or table meant for a model bundle: the one-sentence refusal
        try:
            x = encode_obs(observations, self.info)
            one = x.ndim == 1
            actions = self.act(x[None] if one else x)
        except (IndexError, ValueError, RuntimeError) as exc:
            shape = (
                tuple(self.info.obs["shape"])
                if self.info.obs.get("shape")
                else f"an integer state below {self.info.obs.get('n')}"
            )
            raise InvalidInputError(
                f"`observations` of shape {tuple(np.shape(observations))} do not fit {self.info.env_id!r}, whose observations are {shape} "
                f"({type(exc).__name__}); pass one observation as `env.step` returns it, or a stack of them."
            ) from None
        return actions[0] if one else actions

    def evaluate(self, episodes: int = 100, seed: int = EVAL_SEED) -> dict[str, Any]:  # type: ignore[override]
        """Greedy episodes with fixed seeds, beside a uniformly random policy on the same seeds."""
        if isinstance(episodes, (str, Path)) or hasattr(episodes, "columns"):
            self.task  # noqa: B018 - labelled data meant for a model bundle: the one-sentence refusal
        if not isinstance(episodes, int) or episodes < 1:
            raise InvalidConfigError(
                f"`episodes` is {episodes!r} but must be a positive integer such as 100."
            )
        with one_thread():
            ev = evaluate_policy(self.info, self.act, episodes, seed)
        base = evaluate_policy(self.info, random_policy(self.info, seed), episodes, seed)
        out: dict[str, Any] = {
            "env_id": self.info.env_id,
            "algo": self.algo,
            **ev.summary(),
            "random": base.summary(),
        }
        if self.info.reward_threshold is not None:
            out["reward_threshold"] = self.info.reward_threshold
            out["solved"] = bool(ev.mean_return >= self.info.reward_threshold)
        return out

    def evaluation(self, episodes: int = 100, seed: int = EVAL_SEED) -> Evaluation:
        with one_thread():
            return evaluate_policy(self.info, self.act, episodes, seed)

    def play(
        self,
        path: str | Path,
        episodes: int = 3,
        seed: int = EVAL_SEED,
        fps: int = 30,
        max_frames: int = 1500,
    ) -> Path:
        """Render greedy episodes to an animated GIF (Pillow); returns the path written."""
        from PIL import Image

        if "rgb_array" not in self.info.render_modes:
            modes = ", ".join(self.info.render_modes) or "none"
            raise InvalidInputError(
                f"environment {self.info.env_id!r} cannot render frames (its render modes: {modes}); play needs one with render_mode='rgb_array', so use evaluate instead."
            )
        if not isinstance(episodes, int) or episodes < 1:
            raise InvalidConfigError(
                f"`episodes` is {episodes!r} but must be a positive integer such as 3."
            )
        # pygame draws the frames off-screen; without these it probes for a display and an audio
        # device and prints "XDG_RUNTIME_DIR is invalid" on machines without them.
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        env = make_env(self.info.env_id, self.info.env_kwargs, render_mode="rgb_array")
        frames: list[Any] = []
        try:
            for k in range(episodes):
                obs, _ = env.reset(seed=seed + k)
                frames.append(env.render())
                done = False
                while not done and len(frames) < max_frames:
                    action = self.act(encode_obs(obs, self.info)[None])[0]
                    obs, _, term, trunc, _ = env.step(action)
                    frames.append(env.render())
                    done = term or trunc
        finally:
            env.close()
        images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames if f is not None]
        if not images:
            raise InvalidInputError(
                f"environment {self.info.env_id!r} returned no frames to draw; play needs one with render_mode='rgb_array'."
            )
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = private_tmp(out)
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=int(1000 / fps),
            loop=0,
        )
        tmp.replace(out)
        return out

    # ------------------------------------------------------------------ saving
    def state_tensors(self) -> dict[str, torch.Tensor]:
        if self.q_table is not None:
            return {"q_table": torch.as_tensor(self.q_table, dtype=torch.float64).contiguous()}
        assert self.model is not None
        return {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}

    def save(self, path: str | Path, *, overwrite: bool = False, what: str = "`path`") -> Path:
        """Write the bundle folder atomically (manifest.json + weights.safetensors); an existing ``path`` is
        replaced only if it is an earlier dlpipe bundle and ``overwrite`` is True."""
        from safetensors.torch import save_file

        state = self.state_tensors()
        with atomic_dir(path, overwrite=overwrite, kind="bundle", what=what) as tmp:
            save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT})
            manifest = self.manifest
            manifest["weights"] = {
                "file": WEIGHTS,
                "sha256": sha256_file(tmp / WEIGHTS),
                "tensors": {k: list(v.shape) for k, v in state.items()},
            }
            write_json(tmp / MANIFEST, manifest)
            write_model_card(tmp, manifest)
        return Path(path)


def load_agent(path: str | Path) -> Agent:
    """Load an RL bundle folder (kind "rl"), or the run folder holding it, checking format, checksum and tensor shapes."""
    root = Path(path)
    if (root / "bundle" / MANIFEST).is_file() and not (root / MANIFEST).exists():
        root = root / "bundle"  # a run folder written by `dlpipe rl train`
    root, manifest = read_manifest(
        root, kind="rl"
    )  # the kind before the keys: a model bundle is not a damaged agent
    if manifest.get("kind") != "rl":
        raise BundleError(
            f"bundle {str(root)!r} is of kind {manifest.get('kind', 'table')!r}, not an RL agent; load it with dlpipe.load_bundle, or pass a bundle written by `dlpipe rl train`."
        )
    return load_rl_bundle(root, manifest)


def load_rl_bundle(root: Path, manifest: dict[str, Any]) -> Agent:
    """The agent of an RL bundle whose manifest was read and checked (``dlpipe.load_bundle`` calls this for kind "rl")."""
    for key in ("env", "model_spec", "algo"):
        if not isinstance(manifest.get(key), (dict, str)):
            raise BundleError(
                f"the manifest of RL bundle {str(root)!r} lacks its `{key}`; the bundle is damaged or not an agent, so re-save it with `dlpipe rl train`."
            )
    state = read_weights(root, manifest)
    try:
        info = EnvInfo.from_dict(manifest["env"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(
            f"the manifest of RL bundle {str(root)!r} has a damaged `env` ({type(exc).__name__}: {exc}); re-save the bundle with `dlpipe rl train`."
        ) from None
    spec = manifest["model_spec"]
    common = {"config": manifest.get("config"), "metrics": manifest.get("metrics")}
    if spec.get("family") == "q-table":
        table = state.get("q_table")
        shape = (info.obs_dim, info.n_actions)
        if table is None or tuple(table.shape) != shape:
            raise BundleError(
                f"bundle {str(root)!r} has no Q-table of shape {shape}; the bundle does not match its manifest."
            )
        return Agent(info, manifest["algo"], spec, q_table=table.numpy(), **common)
    model = build_network(spec)
    load_checked_state(model, state, root)
    return Agent(info, manifest["algo"], spec, model=model, **common)
