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

    from dlpipe.core.runtime import machine_busy, threads_for_load

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
