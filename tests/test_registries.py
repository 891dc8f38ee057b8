"""Registries name code as ``"module:attr"``: every such name points down or sideways, and resolves.

A module that registers ``"dlpipe.x.y:attr"`` makes whoever looks it up import ``dlpipe.x.y`` at run
time, an import the import-linter cannot see (issue #16). So every whole-string constant of that form
in ``src/dlpipe`` is checked against the layer contract in pyproject.toml: the module holding it must
not sit below the module it names, nor name a package its layer keeps independent of its own (the
root package, ``dlpipe/__init__`` and ``dlpipe._builtins``, is above every layer). Every name in the registries (input adapters, bundle loaders, report sections,
pipeline recipes) must resolve, and be one of those constants (so that its registrant was checked).
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dlpipe

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip(
        "tomli", reason="reading pyproject.toml on Python 3.10 needs tomli"
    )

SRC = Path(dlpipe.__file__).resolve().parent  # the package under test, wherever it is imported from
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
NAME = re.compile(r"dlpipe(\.\w+)+:\w+")
ROOT_MODULES = {"dlpipe", "dlpipe._builtins"}  # the root package sits above every layer


def _layers() -> dict[str, tuple[int, bool]]:
    """Package -> (rank in the layer contract, higher is higher; whether its layer's packages are independent).

    As in import-linter, packages of one layer joined by ``|`` may not import each other; by ``:`` they may.
    """
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    layers = contract["layers"]
    return {
        pkg.strip(): (len(layers) - i, "|" in layer)
        for i, layer in enumerate(layers)
        for pkg in re.split(r"[|:]", layer)
    }


LAYERS = _layers()
ROOT = ("dlpipe", len(LAYERS) + 1, False)


def _layer(module: str) -> tuple[str, int, bool] | None:
    """(package, rank, independent) of ``module``, or None when no layer of the contract holds it."""
    if module in ROOT_MODULES:
        return ROOT
    for pkg, (rank, independent) in LAYERS.items():
        if module == pkg or module.startswith(pkg + "."):
            return pkg, rank, independent
    return None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def _names_in_source() -> tuple[tuple[str, str], ...]:
    """``(module, "module:attr")`` for every string constant of that form in the package's source."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and NAME.fullmatch(node.value)
            ):
                found.append((_module_name(path), node.value))
    return tuple(found)


def _resolve(name: str) -> object:
    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def _registered() -> dict[str, list[str]]:
    """The names each registry holds now (after importing the modules that fill them)."""
    importlib.import_module("dlpipe.pipeline.kinds")  # registers the built-in recipes
    adapters = importlib.import_module("dlpipe.data.inputs")._ADAPTERS
    composites = importlib.import_module("dlpipe.bundle.bundle")._COMPOSITE
    sections = importlib.import_module("dlpipe.reports.sections")._PROVIDERS
    recipes = importlib.import_module("dlpipe.pipeline.recipe")._RECIPES
    return {
        "input adapters": [t for t in adapters.values() if isinstance(t, str)],
        "bundle loaders": [t for t in composites.values() if isinstance(t, str)],
        "report sections": [t for ts in sections.values() for t in ts if isinstance(t, str)],
        # a recipe's name is replaced by the recipe once it is used, so only the unused ones are left here
        "pipeline recipes": [e.recipe for e in recipes.values() if isinstance(e.recipe, str)],
    }


def test_the_contract_is_read():
    rank = {pkg: r for pkg, (r, _) in LAYERS.items()}
    assert (
        rank["dlpipe.cli"]
        > rank["dlpipe.rl"]
        > rank["dlpipe.bundle"]
        > rank["dlpipe.data"]
        > rank["dlpipe.core"]
    )
    assert (
        LAYERS["dlpipe.rl"] == LAYERS["dlpipe.tracking"] == (rank["dlpipe.rl"], True)
        and LAYERS["dlpipe.core"][1] is False
    )
    assert _layer("dlpipe._builtins") == ROOT and _layer("dlpipe.rl.agent") == (
        "dlpipe.rl",
        rank["dlpipe.rl"],
        True,
    )
    assert (
        _module_name(SRC / "bundle" / "bundle.py") == "dlpipe.bundle.bundle"
        and _module_name(SRC / "data" / "__init__.py") == "dlpipe.data"
    )


def test_every_name_points_down_or_sideways():
    names = _names_in_source()
    assert len(names) >= 10, f"found only {names}"
    wrong = []
    for module, name in names:
        here, there = _layer(module), _layer(name.partition(":")[0])
        if here is None or there is None:
            wrong.append(
                f"{module} holds {name!r}, but {module if here is None else name} is in no layer of the contract"
            )
        elif there[1] > here[1]:
            wrong.append(f"{module} names {name!r}, a layer above its own")
        elif there[1] == here[1] and there[0] != here[0] and here[2]:
            wrong.append(
                f"{module} names {name!r}, in {there[0]}, which its layer keeps independent of {here[0]}"
            )
    assert not wrong, (
        "names that point up the layers (register them from dlpipe._builtins):\n" + "\n".join(wrong)
    )


@pytest.mark.parametrize(
    "registry", ["input adapters", "bundle loaders", "report sections", "pipeline recipes"]
)
def test_every_registered_name_resolves_and_is_checked(registry):
    in_source = {name for _, name in _names_in_source()}
    names = _registered()[registry]
    for name in names:
        assert _resolve(name) is not None, name
        assert name in in_source, (
            f"{name!r} is registered but is no string constant of src/dlpipe, so its layer is not checked"
        )


def test_the_built_in_kinds_are_registered_without_importing_their_code():
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent("""
        import sys
        import dlpipe.core.extensions as ext
        print(sorted(ext.BUNDLE_LOADERS), ext.INPUT_ADAPTERS.get("series"), ext.REPORT_SECTIONS.get("rl"), sorted(ext.REPLACED_SECTIONS.get("rl", ())))
        print(sorted(m for m in sys.modules if m == "torch" or m.startswith(("dlpipe.rl", "dlpipe.ensembles", "dlpipe.evaluation"))))
    """),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "['ensemble', 'keras', 'rl'] dlpipe.evaluation.forecast_baselines:ForecastAdapter ['dlpipe.rl.report:sections'] ['data', 'evaluation', 'training', 'verdict']",
        "[]",
    ]


# ------------------------------------------------------------------ loading in a fresh process
@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """An RL agent's bundle and an ensemble's bundle, saved by this process."""
    import numpy as np
    import pandas as pd

    from dlpipe.ensembles import build_ensemble
    from dlpipe.rl import train_agent

    root = tmp_path_factory.mktemp("bundles")
    train_agent(
        "FrozenLake-v1",
        "qlearning",
        env_kwargs={"is_slippery": False},
        steps=200,
        seed=0,
        out=root / "rl",
        report=False,
    )
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=48), "b": rng.normal(size=48)})
    frame["y"] = np.where(frame["a"] + frame["b"] > 0, "yes", "no")
    members = [
        dlpipe.train(frame, "y", seed=s, save=False, epochs=2, progress="quiet").bundle
        for s in (0, 1)
    ]
    build_ensemble(members).save(root / "ensemble")
    return {"rl": root / "rl" / "bundle", "ensemble": root / "ensemble"}


@pytest.mark.service
@pytest.mark.parametrize("loader", ["dlpipe.bundle", "dlpipe"])
@pytest.mark.parametrize("kind", ["rl", "ensemble"])
def test_a_bundle_loads_in_a_fresh_process_without_importing_its_package(bundles, kind, loader):
    script = textwrap.dedent(f"""
        import importlib, sys
        load_bundle = importlib.import_module({loader!r}).load_bundle
        assert not [m for m in sys.modules if m.startswith(("dlpipe.rl", "dlpipe.ensembles"))]
        bundle = load_bundle(sys.argv[1])
        print(bundle.kind, type(bundle).__module__, type(bundle).__name__)
    """)
    out = subprocess.run(
        [sys.executable, "-c", script, str(bundles[kind])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert (
        out.stdout.split()
        == {
            "rl": ["rl", "dlpipe.rl.agent", "Agent"],
            "ensemble": ["ensemble", "dlpipe.ensembles.ensemble", "EnsembleBundle"],
        }[kind]
    )
