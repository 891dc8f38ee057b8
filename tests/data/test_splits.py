import numpy as np
import pytest

from dlpipe.core.errors import DataWarning
from dlpipe.data.splits import split_indices


def test_stratified_fractions_and_disjoint():
    y = np.array([0] * 80 + [1] * 20)
    tr, va, te = split_indices(100, val_fraction=0.2, test_fraction=0.2, seed=0, stratify=y)
    assert len(tr) == 60 and len(va) == 20 and len(te) == 20
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    for part in (tr, va, te):
        assert y[part].mean() == pytest.approx(0.2)


def test_seeded():
    a = split_indices(50, val_fraction=0.2, test_fraction=0.2, seed=1)
    b = split_indices(50, val_fraction=0.2, test_fraction=0.2, seed=1)
    c = split_indices(50, val_fraction=0.2, test_fraction=0.2, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_tiny_tables_use_every_row_and_say_so():
    with pytest.warns(DataWarning, match="too few to hold out"):
        tr, va, te = split_indices(4, val_fraction=0.2, test_fraction=0.2, seed=0)
    assert list(tr) == list(va) == list(te) == [0, 1, 2, 3]
