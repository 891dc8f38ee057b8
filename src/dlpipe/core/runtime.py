"""Seeds, devices, threads and optional imports: the process-wide switches in one place."""

from __future__ import annotations

import importlib
import math
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from dlpipe.core.errors import InvalidConfigError, MissingDependencyError

if TYPE_CHECKING:
    import torch

__all__ = [
    "seed_everything",
    "resolve_device",
    "require",
    "set_deterministic",
    "deterministic_mode",
    "machine_busy",
    "free_cores",
    "threads_for_load",
]

_DEVICES = ("auto", "cpu", "cuda", "mps")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators with one number."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def set_deterministic(enabled: bool) -> None:
    """Ask torch for deterministic kernels; slower on CUDA, and some ops then raise if unsupported."""
    import torch

    if enabled:
        # cuBLAS needs this to be deterministic; harmless on the CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.benchmark = not enabled


@contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Deterministic kernels inside the block when ``enabled``; torch's previous setting is put back after,
    so one ``deterministic`` run does not change the runs that follow it in the same process."""
    import torch

    if not enabled:
        yield
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.benchmark,
    )
    set_deterministic(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.benchmark = before[2]


def resolve_device(device: str = "auto") -> torch.device:
    """Turn ``"auto"`` into the best device present (cuda, then mps, then cpu)."""
    import torch

    name = (device or "auto").split(":")[0]
    if name not in _DEVICES:
        raise InvalidConfigError(
            f"`device` is {device!r} but must be one of {', '.join(_DEVICES)}; pass device='auto' to pick the best one present."
        )
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InvalidConfigError(
            "`device` is 'cuda' but no CUDA device is present; pass device='auto' or device='cpu'."
        )
    return torch.device(device)


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency or say which dlpipe extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        raise MissingDependencyError(
            f"this feature needs {top}, which is not installed; run `pip install 'dlpipe[{extra}]'`."
        ) from exc


# This process's own share of the 1-minute load average (see _own_load): the last sample and the estimate.
_own_lock = threading.Lock()
_own = {"t": time.monotonic(), "cpu": time.process_time(), "load": 0.0}


def _own_load() -> float:
    """This process's part of the 1-minute load average: its CPU use (every thread) since the last call,
    folded into an average that decays as the kernel's does (a 60-second time constant).

    A run that just finished keeps the load average up for a minute; without this, the next run in the
    same process (a benchmark's next seed, a notebook's next cell) read its own past work as another
    job's and dropped to one thread (MNIST seed 2: 109 s of training against 69-77 s, 2026-12-07).
    """
    with _own_lock:
        now, cpu = time.monotonic(), time.process_time()
        dt = now - _own["t"]
        if dt > 0:
            decay = math.exp(-dt / 60.0)
            rate = max(0.0, (cpu - _own["cpu"]) / dt)
            _own.update(t=now, cpu=cpu, load=_own["load"] * decay + rate * (1.0 - decay))
        return _own["load"]


def machine_busy() -> bool:
    """True when the 1-minute load average, less this process's own recent part of it, is at or above the
    number of cores: other processes then keep the cores busy.

    On such a machine torch's spin-waiting intra-op threads fight the other processes for the cores: the
    engine measured steps 3-25x slower on two threads than on one, an evaluation pass 19.6 of a 20.8 s run.
    """
    other = _other_load()
    return other is not None and other >= (os.cpu_count() or 1)


def free_cores() -> int:
    """The cores other processes leave free: the core count less the 1-minute load average that is not
    this process's own (:func:`_own_load`), rounded, between 1 and the core count.

    For OpenMP thread pools (torch's intra-op threads, scikit-learn's HistGradientBoosting): a parallel
    region waits for its slowest thread, so a thread sharing a core with another job stalls every
    region. Fitting breast_cancer's 340 training rows took 0.2-0.3 s on one thread and 9-48 s on two
    while one core ran another job (load 1.8 on 2 cores, 2026-12-07), which :func:`machine_busy` (load
    at or above the core count) let through; an MLP training step (200-512-256-1, batch 256) was 30x
    slower on two torch threads.
    """
    cores = os.cpu_count() or 1
    other = _other_load()
    return cores if other is None else max(1, min(cores, round(cores - other)))


def _other_load() -> float | None:
    """The 1-minute load average less this process's own part (:func:`_own_load`), at least 0; None where
    the platform has no load average."""
    if not hasattr(os, "getloadavg"):
        return None
    return max(0.0, os.getloadavg()[0] - _own_load())


@contextmanager
def threads_for_load(pin: bool = False) -> Iterator[int]:
    """Run the block on the torch threads other processes leave cores for (:func:`free_cores`, at most
    torch's count; one when ``pin``: deterministic runs keep one count whatever the load); the previous
    count is put back after.

    Yields the count in force. The training engine picks its own count inside (``Trainer``); this covers
    the rest of a run: evaluation, baselines, attributions, reports. Also a decorator:
    ``@threads_for_load()`` runs each call of the function this way.
    """
    import torch

    before = torch.get_num_threads()
    count = 1 if pin else min(before, free_cores())
    if count != before:
        torch.set_num_threads(count)
    try:
        yield count
    finally:
        if count != before:
            torch.set_num_threads(before)
