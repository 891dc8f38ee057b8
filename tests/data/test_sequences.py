"""UCR/UEA readers (.ts with its header, .tsv/.txt with the label first), padding with masks, z-normalisation."""

import numpy as np
import pytest

from dlpipe.core.errors import InvalidInputError, UnsupportedFileError
from dlpipe.data.sequences import (
    SequenceAdapter,
    load_sequences,
    pad_sequences,
    read_sequences,
    znormalize,
)
from tests.conftest import shared_data

TS = """# a comment
@problemName Toy
@timeStamps false
@univariate true
@equalLength false
@classLabel true a b
@data
1.0,2.0,3.0:a
4.0,?,6.0,7.0:b
5.0,6.0:a
"""


def test_ts_format_with_header_variable_length_and_missing(tmp_path):
    path = tmp_path / "toy_TRAIN.ts"
    path.write_text(TS)
    ds = load_sequences(path)
    assert ds.name == "toy" and ds.x.shape == (3, 4, 1)
    assert ds.labels.tolist() == ["a", "b", "a"]
    assert ds.mask.tolist() == [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]]
    assert ds.x[1, :, 0].tolist() == [4.0, 5.0, 6.0, 7.0]  # '?' interpolated
    assert ds.x[2, :, 0].tolist() == [5.0, 6.0, 0.0, 0.0]  # padded with zeros


def test_ucr_tsv_label_first_with_trailing_nan_padding(tmp_path):
    path = tmp_path / "toy.tsv"
    path.write_text("1\t0.5\t0.25\t1.0\n2\t3.0\t4.0\tNaN\n")
    seqs, labels = read_sequences(path)
    assert labels.tolist() == ["1", "2"]
    x, mask = pad_sequences(seqs)
    assert mask.tolist() == [[1, 1, 1], [1, 1, 0]]


def test_multivariate_ts(tmp_path):
    path = tmp_path / "mv.ts"
    path.write_text(
        "@problemName mv\n@univariate false\n@classLabel true x y\n@data\n1,2,3:4,5,6:x\n1,2,3:0,0,0:y\n"
    )
    ds = load_sequences(path)
    assert ds.x.shape == (2, 3, 2) and ds.x[0, :, 1].tolist() == [4, 5, 6]


def test_znormalisation_per_series_ignores_padding():
    x, mask = pad_sequences([np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0])])
    z = znormalize(x, mask)
    assert z[0, :, 0].mean() == pytest.approx(0.0, abs=1e-6) and z[0, :, 0].std() == pytest.approx(
        1.0, abs=1e-5
    )
    assert z[1, :, 0].tolist() == pytest.approx([-1.0, 1.0, 0.0])


def test_bad_files():
    with pytest.raises(UnsupportedFileError, match="does not exist"):
        read_sequences("nope.ts")


def test_bad_file_contents(tmp_path):
    p = tmp_path / "bad.tsv"
    p.write_text("1\t0.5\tabc\n")
    with pytest.raises(
        UnsupportedFileError, match=r"line 1 of .* holds a value that is not a number"
    ):
        read_sequences(p)
    q = tmp_path / "bad.ts"
    q.write_text("1,2,3:a\n")
    with pytest.raises(UnsupportedFileError, match=r"before `@data`"):
        read_sequences(q)
    r = tmp_path / "stamps.ts"
    r.write_text("@timeStamps true\n@data\n(0,1):a\n")
    with pytest.raises(UnsupportedFileError, match="timeStamps true"):
        read_sequences(r)
    with pytest.raises(InvalidInputError, match="has 2 sequences but 1 labels"):
        load_sequences(([[1.0], [2.0]], ["a"]))


def test_adapter_pads_to_the_trained_length_and_checks_channels():
    ad = SequenceAdapter.from_state({"length": 5, "channels": 1, "znorm": False})
    batch = ad.prepare(np.array([[1.0, 2.0, 3.0]]))
    assert batch.inputs[0].shape == (1, 5, 1) and batch.inputs[1].tolist() == [[1, 1, 1, 0, 0]]
    assert batch.baseline_features.shape == (1, 5)
    with pytest.raises(InvalidInputError, match="have 2 channels but the model reads 1"):
        ad.prepare(np.zeros((2, 5, 2)))


def test_official_ucr_files_load():
    ds = load_sequences(
        shared_data("ucr", "GunPoint_TRAIN.ts"), test=shared_data("ucr", "GunPoint_TEST.ts")
    )
    assert ds.x.shape == (50, 150, 1) and ds.test_x.shape == (150, 150, 1)
    assert sorted(set(ds.labels.tolist())) == ["1", "2"]
