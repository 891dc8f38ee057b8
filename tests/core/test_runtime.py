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
