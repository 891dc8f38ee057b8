"""Crash-safe training: a checkpoint callback that a later fit resumes from, ending at the same weights.

Each checkpoint is ONE file, ``checkpoint.safetensors`` in the checkpoint folder (``runs/<name>.partial/``):
tensors (model weights, optimiser state, the batch-order generator and torch's RNG state, callback
tensors such as early stopping's best weights) plus a JSON document in the safetensors metadata
(epoch, history, optimiser scalars, NumPy/Python RNG states, callback scalars, the run fingerprint).
It is written to a temporary name, flushed and renamed over the previous one, so a ``kill -9`` at any
moment leaves either the previous or the new checkpoint, never half of one. No pickle: loading reads
JSON and raw tensors.

Resuming restores all of it in ``on_fit_start`` (after the other callbacks reset themselves, so this
callback goes last) and sets ``trainer.start_epoch``; the trainer then continues with the next epoch.
Because the batch order, dropout masks and optimiser moments continue exactly, the final weights are
the same as those of an uninterrupted run with the same seed.
"""

from __future__ import annotations

import json
import os
import random
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from dlpipe.core.errors import DlpipeError, DlpipeWarning, InvalidConfigError, InvalidInputError
from dlpipe.training.callbacks import Callback, ProgressCallback

if TYPE_CHECKING:
    from dlpipe.training.trainer import Trainer

__all__ = [
    "Checkpoint",
    "CHECKPOINT_FILE",
    "PARTIAL_SUFFIX",
    "find_checkpoint",
    "check_checkpoint",
    "is_checkpoint_folder",
]

CHECKPOINT_FILE = "checkpoint.safetensors"
META_FILE = "meta.json"
PARTIAL_SUFFIX = ".partial"
_SCALARS = (bool, int, float, str, type(None))
# everything a checkpoint folder ever holds: removing a checkpoint deletes these names and nothing else
_OWN_FILES = (CHECKPOINT_FILE, META_FILE, f".{CHECKPOINT_FILE}.tmp", f".{META_FILE}.tmp")


class Checkpoint(Callback):
    """Write the whole training state every epoch, atomically; optionally resume from it.

    Args:
        directory: The checkpoint folder (created if needed), e.g. ``runs/<name>.partial``.
        fingerprint: JSON describing the run (config and data); a resume with a different one is refused.
        resume: Restore the state found in ``directory`` at the start of the fit. Defaults to `False`.
        min_interval: Seconds between writes: epochs shorter than this are checkpointed less often
            (resuming from any epoch gives the same result). Defaults to `0.0` (every epoch).
        extra: JSON kept beside the fingerprint (e.g. the run folder to write at the end). Defaults to `None`.

    Example:
        >>> cb = Checkpoint("runs/demo.partial", {"config": {}})
        >>> cb.resume
        False
    """

    def __init__(
        self,
        directory: str | Path,
        fingerprint: dict[str, Any],
        *,
        resume: bool = False,
        min_interval: float = 0.0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if min_interval < 0:
            raise InvalidConfigError(
                f"`min_interval` is {min_interval!r} but must be >= 0 seconds."
            )
        self.directory = Path(directory)
        self.fingerprint = json.loads(json.dumps(fingerprint, default=str))
        self.resume = resume
        self.min_interval = min_interval
        self.extra = dict(extra or {})
        self.resumed_epoch = 0

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer: Trainer) -> None:
        self._last_write = -float("inf")
        self._failed = False
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = self.directory / META_FILE
        if not meta.exists():
            _write_atomic(
                meta, json.dumps({"fingerprint": self.fingerprint, **self.extra}, indent=2).encode()
            )
        if self.resume and (self.directory / CHECKPOINT_FILE).is_file():
            self.resumed_epoch = self._restore(trainer)
            trainer.start_epoch = self.resumed_epoch

    def on_epoch_end(self, trainer: Trainer, epoch: int, logs: dict[str, float]) -> None:
        now = time.monotonic()
        last = epoch == trainer.epochs or trainer.stop_training
        if self._failed:
            return
        if now - self._last_write >= self.min_interval or last:
            try:
                self._save(trainer, epoch)
            except OSError as exc:  # a full disk must not end the training itself
                self._failed = True
                warnings.warn(
                    DlpipeWarning(
                        f"checkpoints stopped: writing to {str(self.directory)!r} failed ({exc}); training continues, but cannot be resumed after a crash."
                    ),
                    stacklevel=2,
                )
            self._last_write = time.monotonic()

    @property
    def has_checkpoint(self) -> bool:
        return (self.directory / CHECKPOINT_FILE).is_file()

    def remove(self) -> None:
        """Delete the checkpoint's files and then its folder if that is empty (called once the run folder is written,
        or when the run failed for good); a file in it that the checkpoint did not write is left alone."""
        for name in _OWN_FILES:
            try:
                (self.directory / name).unlink()
            except FileNotFoundError:
                pass
        try:
            self.directory.rmdir()
        except OSError:
            pass

    # ------------------------------------------------------------------ saving
    def _save(self, trainer: Trainer, epoch: int) -> None:
        tensors: dict[str, torch.Tensor] = {}
        for k, v in trainer.model.state_dict().items():
            tensors[f"model/{k}"] = v
        opt = trainer.optimizer.state_dict()
        for gi, group in enumerate(opt["groups"]):
            for k, v in group.items():
                tensors[f"optim/{gi}/{k}"] = v
        tensors["rng/generator"] = trainer.generator.get_state()
        tensors["rng/torch"] = torch.get_rng_state()
        callbacks = {
            key: _capture(_state_vars(cb), f"cb/{key}", tensors)
            for key, cb in self._stateful(trainer)
        }
        np_state: Any = np.random.get_state()
        py_state = random.getstate()
        state = {
            "epoch": epoch,
            "fingerprint": self.fingerprint,
            "optimizer": {
                "kind": opt["kind"],
                "lr": opt["lr"],
                "steps": opt["steps"],
                "groups": len(opt["groups"]),
            },
            "history": trainer.history.records,
            "best_epoch": trainer.history.best_epoch,
            "stopped_epoch": trainer.history.stopped_epoch,
            "callbacks": callbacks,
            "numpy_rng": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "python_rng": [py_state[0], list(py_state[1]), py_state[2]],
            "finished": bool(epoch == trainer.epochs or trainer.stop_training),
        }
        from safetensors.torch import save

        blob = save(
            {k: v.detach().cpu().contiguous() for k, v in tensors.items()},
            metadata={"state": json.dumps(state)},
        )
        _write_atomic(self.directory / CHECKPOINT_FILE, blob)

    # ------------------------------------------------------------------ loading
    def _restore(self, trainer: Trainer) -> int:
        tensors, state = read_checkpoint(self.directory)
        try:
            return self._apply_state(trainer, tensors, state)
        except DlpipeError:
            raise
        except (
            KeyError,
            IndexError,
            TypeError,
            ValueError,
            RuntimeError,
        ) as exc:  # a checkpoint edited or written by another version
            raise InvalidInputError(_damaged(self.directory / CHECKPOINT_FILE, exc)) from None

    def _apply_state(
        self, trainer: Trainer, tensors: dict[str, torch.Tensor], state: dict[str, Any]
    ) -> int:
        if state.get("fingerprint") != self.fingerprint:
            raise InvalidConfigError(
                f"the checkpoint in {str(self.directory)!r} belongs to a run with another config or data "
                f"({_first_difference(state.get('fingerprint'), self.fingerprint)}); resume with the same data and flags, or start a new run."
            )
        stateful = dict(self._stateful(trainer))
        if sorted(state["callbacks"]) != sorted(stateful):
            raise InvalidConfigError(
                f"the checkpoint in {str(self.directory)!r} was written with the callbacks {sorted(state['callbacks'])} but this fit has {sorted(stateful)}; resume with the same flags."
            )
        model_state = {k[len("model/") :]: v for k, v in tensors.items() if k.startswith("model/")}
        trainer.model.load_state_dict(model_state)
        opt = state["optimizer"]
        groups = [
            {k.split("/", 2)[2]: v for k, v in tensors.items() if k.startswith(f"optim/{gi}/")}
            for gi in range(opt["groups"])
        ]
        trainer.optimizer.load_state_dict(
            {"kind": opt["kind"], "lr": opt["lr"], "steps": opt["steps"], "groups": groups}
        )
        trainer.generator.set_state(tensors["rng/generator"])
        torch.set_rng_state(tensors["rng/torch"])
        np_state = state["numpy_rng"]
        np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
        py_state = state["python_rng"]
        random.setstate((py_state[0], tuple(py_state[1]), py_state[2]))
        trainer.history.records = [dict(r) for r in state["history"]]
        trainer.history.best_epoch = state["best_epoch"]
        trainer.history.stopped_epoch = state["stopped_epoch"]
        for key, saved in state["callbacks"].items():
            _apply(stateful[key], saved, f"cb/{key}", tensors)
        return int(state["epoch"])

    def _stateful(self, trainer: Trainer) -> list[tuple[str, Any]]:
        """(``Type#k``, callback) for the callbacks whose state is checkpointed (not progress, not trackers),
        and (``step:Type``, step) for a custom training step (a GAN's sample grids)."""
        seen: dict[str, int] = {}
        out = []
        step = getattr(trainer, "train_step", None)
        if step is not None:
            out.append((f"step:{type(step).__name__}", step))
        for cb in trainer.callbacks:
            if (
                cb is self
                or isinstance(cb, ProgressCallback)
                or getattr(cb, "checkpoint_state", True) is False
            ):
                continue
            name = type(cb).__name__
            seen[name] = seen.get(name, 0) + 1
            out.append((f"{name}#{seen[name]}", cb))
        return out


def read_checkpoint(
    directory: str | Path, *, tensors: bool = True
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The tensors and JSON state of the checkpoint in ``directory`` (``tensors=False``: the state only, a cheap check).

    Raises:
        InvalidInputError: the file is truncated, damaged or not a dlpipe checkpoint.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(directory) / CHECKPOINT_FILE
    out: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as fh:
            state = json.loads((fh.metadata() or {})["state"])
            if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
                raise ValueError("its state has no epoch")
            if tensors:
                for k in fh.keys():  # noqa: SIM118 - safe_open is not a mapping
                    out[k] = fh.get_tensor(k)
    except (SafetensorError, OSError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(_damaged(path, exc)) from None
    return out, state


def check_checkpoint(directory: str | Path) -> dict[str, Any]:
    """Read the checkpoint's header and state (not its tensors): a truncated or damaged file fails here, before training."""
    return read_checkpoint(directory, tensors=False)[1]


def is_checkpoint_folder(path: str | Path) -> bool:
    """True for a folder holding nothing but what :class:`Checkpoint` writes (so dlpipe may delete it)."""
    p = Path(path)
    if p.is_symlink() or not p.is_dir():
        return False
    return all(e.name in _OWN_FILES for e in p.iterdir())


def _damaged(path: Path, exc: BaseException) -> str:
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return (
        f"the checkpoint {str(path)!r} is truncated or damaged ({detail}), so the run cannot be resumed from it; "
        "start the run again without `resume` (and set `overwrite` to true to discard this checkpoint)."
    )


def find_checkpoint(path: str | Path) -> Path:
    """The checkpoint folder for ``--resume PATH``: ``PATH`` itself, or ``PATH.partial`` beside it.

    Raises:
        InvalidConfigError: the run finished already (nothing to resume) or there is no checkpoint.
    """
    p = Path(path)
    candidates = (
        [p] if p.name.endswith(PARTIAL_SUFFIX) else [p.with_name(p.name + PARTIAL_SUFFIX), p]
    )
    for c in candidates:
        if (c / CHECKPOINT_FILE).is_file():
            # A checkpoint of the last epoch is still resumable: the crash came before the run
            # folder was written, and resuming runs no epoch, only evaluation and saving.
            return c
    if (p / "metrics.json").is_file():
        raise InvalidConfigError(
            f"{str(p)!r} is a finished run folder; there is nothing to resume, so start a new run without `resume`."
        )
    raise InvalidConfigError(
        f"no checkpoint was found at {str(p)!r}; pass the `runs/<name>.partial` folder an interrupted run left behind."
    )


# ---------------------------------------------------------------------- helpers
def _state_vars(obj: Any) -> dict[str, Any]:
    """``vars(obj)`` without the attributes it names in ``checkpoint_skip`` (scratch rebuilt every epoch)."""
    skip = getattr(obj, "checkpoint_skip", ())
    return {k: v for k, v in vars(obj).items() if k not in skip}


def _capture(obj: dict[str, Any], prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """JSON for the scalars of a callback's ``__dict__``; tensors go to ``tensors`` under ``prefix``."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}/{key}"
        if isinstance(value, float) and not np.isfinite(value):
            out[key] = {"__float__": repr(value)}
        elif isinstance(value, _SCALARS):
            out[key] = value
        elif isinstance(value, torch.Tensor):
            tensors[name] = value
            out[key] = {"__tensor__": name}
        elif (
            isinstance(value, dict)
            and value
            and all(isinstance(v, torch.Tensor) for v in value.values())
        ):
            for k, v in value.items():
                tensors[f"{name}/{k}"] = v
            out[key] = {"__tensors__": name, "keys": list(value)}
        elif (
            hasattr(value, "__dict__")
            and not callable(value)
            and type(value).__module__.startswith("dlpipe.")
        ):
            out[key] = {"__object__": _capture(vars(value), name, tensors)}
    return out


def _apply(
    target: Any, saved: dict[str, Any], prefix: str, tensors: dict[str, torch.Tensor]
) -> None:
    for key, value in saved.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict) and "__float__" in value:
            setattr(target, key, float(value["__float__"]))
        elif isinstance(value, dict) and "__tensor__" in value:
            setattr(target, key, tensors[value["__tensor__"]].clone())
        elif isinstance(value, dict) and "__tensors__" in value:
            setattr(target, key, {k: tensors[f"{name}/{k}"].clone() for k in value["keys"]})
        elif isinstance(value, dict) and "__object__" in value:
            _apply(getattr(target, key), value["__object__"], name, tensors)
        else:
            setattr(target, key, value)


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
    return f"`{where or 'value'}` was {a!r}, now {b!r}"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
