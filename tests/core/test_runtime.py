import time

import pytest
import torch

from dlpipe.core.errors import InvalidConfigError, MissingDependencyError
from dlpipe.core.runtime import require, resolve_device, seed_everything


def test_auto_device_is_a_real_device():
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    assert resolve_device("cpu") == torch.device("cpu")


def test_unknown_device_is_refused():
    with pytest.raises(InvalidConfigError, match="must be one of"):
        resolve_device("tpu")


def test_seed_everything_repeats_draws():
    seed_everything(3)
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_require_names_the_extra():
    with pytest.raises(MissingDependencyError, match=r"pip install 'dlpipe\[tune\]'"):
        require("surely_not_installed_pkg", extra="tune")


def test_threads_for_load_uses_one_thread_when_busy_or_pinned_and_puts_the_count_back(monkeypatch):
    import os

    import torch

    from dlpipe.core import runtime
    from dlpipe.core.runtime import machine_busy, threads_for_load

    monkeypatch.setattr(runtime, "_own_load", lambda: 0.0)  # this process idle until now
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        cores = os.cpu_count() or 1
        monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
        assert not machine_busy()
        with threads_for_load() as n:
            assert n == 2 and torch.get_num_threads() == 2
        with threads_for_load(pin=True) as n:  # a deterministic run: one count whatever the load
            assert n == 1 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(os, "getloadavg", lambda: (float(cores), 0.0, 0.0))
        assert machine_busy()
        with threads_for_load() as n:
            assert n == 1 and torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_process_does_not_read_its_own_recent_work_as_a_busy_machine(monkeypatch):
    """The load average still holds the run that just finished in this process; only other processes' part
    counts (a benchmark's next seed must not drop to one thread because of the seed before it)."""
    import os

    from dlpipe.core import runtime

    cores = os.cpu_count() or 1
    runtime._own_load()  # a sample now
    t0 = time.process_time()
    x = 0.0
    while time.process_time() - t0 < 1.5:  # 1.5 s of this process's CPU
        x += sum(i * i for i in range(2000)) * 1e-12
    own = runtime._own_load()
    assert own >= 1.4 / 60  # ~1.5 s of one core, folded into a one-minute average
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + own / 2, 0.0, 0.0))
    assert not runtime.machine_busy()  # the load is at the core count only because of our own part
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 2 * own + 0.01, 0.0, 0.0))
    assert runtime.machine_busy()  # other processes' part alone fills the cores


def test_free_cores_leaves_the_cores_other_jobs_hold(monkeypatch):
    """One core's job beside us leaves 1 of 2 cores (machine_busy() still says no): the tree baselines'
    OpenMP threads must not share it (breast_cancer's HGB: 0.3 s on one thread, 9-48 s on two)."""
    import os

    from dlpipe.core import runtime

    monkeypatch.setattr(runtime, "_own_load", lambda: 0.5)  # this process's own recent part
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    for load, free in [(0.5, 2), (0.9, 2), (1.2, 1), (2.3, 1), (2.5, 1), (9.0, 1)]:
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, 0.0, 0.0))
        assert runtime.free_cores() == free, load
    monkeypatch.setattr(os, "getloadavg", lambda: (2.3, 0.0, 0.0))  # 1.8 of other jobs on 2 cores
    assert not runtime.machine_busy() and runtime.free_cores() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "getloadavg", lambda: (3.5, 0.0, 0.0))
    assert runtime.free_cores() == 5
