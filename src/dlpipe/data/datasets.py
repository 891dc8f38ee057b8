"""Data sets that ship with dlpipe's dependencies (no downloads): ``dlpipe datasets``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dlpipe.core.errors import InvalidInputError, suggest
from dlpipe.data.tabular import TabularDataset

__all__ = ["list_datasets", "load", "DatasetInfo"]


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    task: str
    rows: int
    features: int
    description: str


def _sklearn(loader_name: str, name: str, target: str = "target") -> TabularDataset:
    import sklearn.datasets as skd

    bunch = getattr(skd, loader_name)(as_frame=True)
    frame = bunch.frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    if target != "target":
        frame = frame.rename(columns={"target": target})
    names = getattr(bunch, "target_names", None)
    if names is not None and frame[target].dtype.kind in "iu" and loader_name != "load_digits":
        # Real class names read better in reports than 0/1/2.
        frame[target] = [str(names[i]) for i in frame[target]]
    return TabularDataset(
        frame=frame,
        target=target,
        name=name,
        description=bunch.DESCR.splitlines()[0] if bunch.DESCR else "",
    )


def _xor() -> TabularDataset:
    import pandas as pd

    frame = pd.DataFrame({"x1": [0, 0, 1, 1], "x2": [0, 1, 0, 1], "y": [0, 1, 1, 0]}).astype(
        "float64"
    )
    frame["y"] = frame["y"].astype("int64")
    return TabularDataset(
        frame=frame, target="y", name="xor", description="The XOR truth table: 4 rows."
    )


def _classification() -> TabularDataset:
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=1000, n_features=20, n_informative=10, n_redundant=5, random_state=42
    )
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame["y"] = y
    return TabularDataset(
        frame=frame,
        target="y",
        name="classification",
        description="make_classification(n_samples=1000, n_features=20, n_informative=10, n_redundant=5, random_state=42)",
    )


def _regression() -> TabularDataset:
    import pandas as pd
    from sklearn.datasets import make_regression

    x, y = make_regression(
        n_samples=1000, n_features=20, n_informative=10, noise=10.0, random_state=42
    )
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame["y"] = y
    return TabularDataset(
        frame=frame,
        target="y",
        name="regression",
        description="make_regression(n_samples=1000, n_features=20, n_informative=10, noise=10, random_state=42)",
    )


_REGISTRY: dict[str, tuple[Callable[[], TabularDataset], DatasetInfo]] = {
    "xor": (_xor, DatasetInfo("xor", "binary", 4, 2, "the XOR truth table")),
    "classification": (
        _classification,
        DatasetInfo(
            "classification",
            "binary",
            1000,
            20,
            "sklearn make_classification, the seed notes' settings",
        ),
    ),
    "regression": (
        _regression,
        DatasetInfo(
            "regression",
            "regression",
            1000,
            20,
            "sklearn make_regression, the seed notes' settings (noise=10)",
        ),
    ),
    "breast_cancer": (
        lambda: _sklearn("load_breast_cancer", "breast_cancer"),
        DatasetInfo(
            "breast_cancer", "binary", 569, 30, "Wisconsin diagnostic breast cancer (real)"
        ),
    ),
    "iris": (
        lambda: _sklearn("load_iris", "iris", "species"),
        DatasetInfo("iris", "multiclass", 150, 4, "Fisher's iris flowers (real)"),
    ),
    "wine": (
        lambda: _sklearn("load_wine", "wine", "cultivar"),
        DatasetInfo("wine", "multiclass", 178, 13, "wine recognition, three cultivars (real)"),
    ),
    "digits": (
        lambda: _sklearn("load_digits", "digits", "digit"),
        DatasetInfo("digits", "multiclass", 1797, 64, "8x8 handwritten digits as a table (real)"),
    ),
    "diabetes": (
        lambda: _sklearn("load_diabetes", "diabetes", "progression"),
        DatasetInfo(
            "diabetes", "regression", 442, 10, "diabetes progression after one year (real)"
        ),
    ),
}


def list_datasets() -> list[DatasetInfo]:
    """The bundled data sets, in a stable order."""
    return [info for _, info in _REGISTRY.values()]


def load(name: str) -> TabularDataset:
    """Load a bundled data set by name (see :func:`list_datasets`).

    Example:
        >>> load("xor").frame.shape
        (4, 3)
    """
    if name not in _REGISTRY:
        raise InvalidInputError(
            f"unknown data set {name!r}{suggest(name, _REGISTRY)}; bundled data sets are: {', '.join(_REGISTRY)}."
        )
    return _REGISTRY[name][0]()
