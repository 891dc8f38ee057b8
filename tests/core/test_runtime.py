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
