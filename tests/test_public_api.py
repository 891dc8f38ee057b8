"""The public surface: every name in ``__all__`` resolves, and ``import dlpipe`` stays light."""

import importlib
import subprocess
import sys

import pytest

import dlpipe

PACKAGES = [
    "dlpipe",
    "dlpipe.core",
    "dlpipe.data",
    "dlpipe.tasks",
    "dlpipe.models",
    "dlpipe.training",
    "dlpipe.evaluation",
    "dlpipe.bundle",
    "dlpipe.pipeline",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name):
    module = importlib.import_module(name)
    assert module.__all__, f"{name} lists no public names"
    for attr in module.__all__:
        assert getattr(module, attr) is not None, f"{name}.{attr}"


def test_top_level_entry_points():
    for attr in (
        "train",
        "evaluate",
        "load_table",
        "load_bundle",
        "datasets",
        "Run",
        "Bundle",
        "Trainer",
        "explain",
        "Explanation",
        "InputExplanation",  # what dl.explain returns for images, sequences and text
    ):
        assert attr in dlpipe.__all__
    with pytest.raises(AttributeError):
        dlpipe.no_such_thing  # noqa: B018


def test_import_dlpipe_does_not_import_torch():
    out = subprocess.run(
        [sys.executable, "-c", "import sys, dlpipe; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip() == "False"
