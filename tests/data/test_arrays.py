"""Array data sets: IDX reading, npz files, the bundle adapter's scaling and shape checks."""

import gzip

import numpy as np
import pytest

from dlpipe.core.errors import InvalidInputError, UnsupportedFileError
from dlpipe.data.arrays import (
    ArrayAdapter,
    ArrayDataset,
    load_digits_images,
    load_mnist,
    load_npz,
    read_idx,
)
from tests.conftest import shared_data


def _write_idx(path, arr):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + arr.astype(np.uint8).tobytes())


def test_idx_round_trip_and_mnist_layout(tmp_path):
    images = np.arange(3 * 4 * 4).reshape(3, 4, 4) % 256
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.array([1, 2, 3]))
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), images)
    ds = load_mnist(tmp_path)
    assert ds.x.shape == (3, 1, 4, 4) and ds.x.max() <= 1.0 and list(ds.y) == [1, 2, 3]


def test_bad_idx_files_are_refused(tmp_path):
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(UnsupportedFileError, match="bad magic number"):
        read_idx(tmp_path / "bad.idx")
    _write_idx(tmp_path / "short.gz", np.zeros((2, 2), np.uint8))
    raw = gzip.open(tmp_path / "short.gz").read()[:-1]
    (tmp_path / "short.idx").write_bytes(raw)
    with pytest.raises(UnsupportedFileError, match="truncated"):
        read_idx(tmp_path / "short.idx")


def test_digits_images_are_scaled_to_unit_range():
    ds = load_digits_images()
    assert ds.x.shape == (1797, 1, 8, 8) and ds.x.min() == 0.0 and ds.x.max() == 1.0


def test_array_dataset_checks_its_input():
    with pytest.raises(InvalidInputError, match=r"`x` has shape \(4, 3\) but image arrays must be"):
        ArrayDataset(np.zeros((4, 3)))
    with pytest.raises(InvalidInputError, match="`y` has 2 labels but `x` has 4 samples"):
        ArrayDataset(np.zeros((4, 8, 8)), np.zeros(2))
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        ArrayDataset(np.full((2, 8, 8), np.nan))


def test_adapter_scales_raw_input_and_checks_the_shape(tmp_path):
    adapter = ArrayAdapter.from_state({"shape": [1, 8, 8], "modality": "image", "scale": 16.0})
    batch = adapter.prepare(np.full((3, 8, 8), 16.0))
    assert batch.inputs[0].shape == (3, 1, 8, 8) and float(batch.inputs[0].max()) == 1.0
    np.savez(tmp_path / "d.npz", x=np.full((2, 1, 8, 8), 8.0), y=np.array([0, 1]))
    batch = adapter.prepare(tmp_path / "d.npz", with_target=True)
    assert float(batch.inputs[0].max()) == 0.5 and list(batch.targets) == [0, 1]
    with pytest.raises(
        InvalidInputError,
        match=r"input samples have shape \(1, 9, 9\) but the model was trained on \(1, 8, 8\)",
    ):
        adapter.prepare(np.zeros((2, 1, 9, 9)))
    np.savez(tmp_path / "noy.npz", images=np.zeros((2, 8, 8)))
    with pytest.raises(InvalidInputError, match="needs one named 'x'"):
        load_npz(tmp_path / "noy.npz")


def test_real_mnist_header_when_present():
    folder = shared_data("mnist")
    ds = load_mnist(folder, "t10k", limit=100)
    assert ds.x.shape == (100, 1, 28, 28) and set(ds.y.tolist()) <= set(range(10))
