"""The compiled kernels' tests skip only where no kernel can be built: no C compiler, or
``DLPIPE_NATIVE=0``. A compiler that is present but fails to build or load a kernel fails the test
with the compiler's message, instead of hiding a broken build behind a skip (issue #21)."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable

import pytest

from dlpipe.models import native


def require_kernel(name: str) -> ctypes.CDLL:
    """Kernel ``name`` (``"stem"``, ``"lstm"``, ``"minirocket"``) loaded, or a skip when it cannot be built
    here, or a failure when it should have been."""
    loaders: dict[str, Callable[[], ctypes.CDLL | None]] = {
        "stem": native.load_stem,
        "lstm": native.load_lstm,
        "minirocket": native.load_minirocket,
    }
    if os.environ.get("DLPIPE_NATIVE", "1") == "0":
        pytest.skip("DLPIPE_NATIVE=0: the compiled kernels are off, torch's kernels are used")
    cc = native.compiler()
    if cc is None:
        pytest.skip("no C compiler here: torch's kernels are used")
    lib = loaders[name]()
    if lib is None:
        pytest.fail(
            f"a C compiler is present ({cc}) but the {name} kernel did not build or load: "
            f"{native.build_error(name)}",
            pytrace=False,
        )
    return lib


@pytest.fixture
def stem_kernel() -> ctypes.CDLL:
    return require_kernel("stem")


@pytest.fixture
def lstm_kernel(monkeypatch: pytest.MonkeyPatch) -> ctypes.CDLL:
    """The LSTM kernel, turned on for the test whatever this CPU's default (``lstm_kernel_wanted``)."""
    monkeypatch.setenv("DLPIPE_LSTM_KERNEL", "1")
    return require_kernel("lstm")


@pytest.fixture
def minirocket_kernel() -> ctypes.CDLL:
    return require_kernel("minirocket")
