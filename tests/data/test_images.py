"""Image loading: IDX, NPZ, layouts, folders (cache, corrupt files, sizes), CSV, the predict adapter, augmentation."""

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from dlpipe.core.errors import DataWarning, InvalidInputError, UnsupportedFileError
from dlpipe.data import images as images_mod
from dlpipe.data.augment import Augment, parse_augment
from dlpipe.data.idx import read_idx, read_npz_images, to_nchw
from dlpipe.data.images import ImageDataset, ImagePreprocessor, load_images


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLPIPE_CACHE_DIR", str(tmp_path / "cache"))


def _idx_bytes(arr: np.ndarray) -> bytes:
    return (
        bytes([0, 0, 0x08, arr.ndim])
        + b"".join(struct.pack(">I", d) for d in arr.shape)
        + arr.astype(np.uint8).tobytes()
    )


def _folder(root, n=6, size=(8, 8), classes=("cat", "dog"), mode="L"):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            shape = size if mode == "L" else (*size, 3)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(
                root / c / f"{c}{i}.png"
            )
    return root


def test_idx_gzip_and_plain(tmp_path):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a-idx3-ubyte").write_bytes(_idx_bytes(x))
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(x)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte"), x)
    np.testing.assert_array_equal(read_idx(tmp_path / "a-idx3-ubyte.gz"), x)


def test_idx_bad_magic_and_truncated(tmp_path):
    (tmp_path / "bad-idx3-ubyte").write_bytes(b"\x12\x34\x08\x03" + b"\x00" * 20)
    with pytest.raises(
        UnsupportedFileError, match=r"magic number 12340803 but an IDX file starts with 0000"
    ):
        read_idx(tmp_path / "bad-idx3-ubyte")
    (tmp_path / "short-idx1-ubyte").write_bytes(_idx_bytes(np.arange(10))[:-3])
    with pytest.raises(UnsupportedFileError, match=r"declares shape \(10,\).*truncated"):
        read_idx(tmp_path / "short-idx1-ubyte")


def test_idx_images_need_labels(tmp_path):
    (tmp_path / "train-images-idx3-ubyte").write_bytes(_idx_bytes(np.zeros((4, 5, 5))))
    with pytest.raises(InvalidInputError, match="no labels file was given; pass `labels`"):
        load_images(tmp_path / "train-images-idx3-ubyte")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.array([0, 1, 0, 1])))
    ds = load_images(
        tmp_path / "train-images-idx3-ubyte", labels=tmp_path / "train-labels-idx1-ubyte"
    )
    assert (
        ds.images.shape == (4, 1, 5, 5)
        and ds.images.dtype == np.uint8
        and ds.labels.tolist() == [0, 1, 0, 1]
    )


def test_npz_key_conventions(tmp_path):
    np.savez(
        tmp_path / "a.npz",
        x_train=np.zeros((6, 8, 8), np.uint8),
        y_train=np.arange(6) % 2,
        x_test=np.zeros((2, 8, 8), np.uint8),
        y_test=np.array([0, 1]),
    )
    ds = load_images(tmp_path / "a.npz")
    assert ds.images.shape == (6, 1, 8, 8) and ds.test_images.shape == (2, 1, 8, 8)
    np.savez(
        tmp_path / "b.npz", data=np.zeros((3, 8, 8, 3), np.float32), targets=np.array([1, 2, 3])
    )
    assert read_npz_images(tmp_path / "b.npz")[0].shape == (3, 8, 8, 3)
    assert load_images(tmp_path / "b.npz").images.dtype == np.float32
    np.savez(tmp_path / "c.npz", pixels=np.zeros((3, 8, 8)), classes=np.arange(3))
    with pytest.raises(
        InvalidInputError,
        match=r"has the keys classes, pixels but no recognisable image/label pair; save the arrays under one of: x_train/y_train",
    ):
        load_images(tmp_path / "c.npz")


def test_layout_detection():
    assert to_nchw(np.zeros((2, 28, 28))).shape == (2, 1, 28, 28)
    assert to_nchw(np.zeros((2, 32, 32, 3))).shape == (2, 3, 32, 32)
    assert to_nchw(np.zeros((2, 3, 32, 32))).shape == (2, 3, 32, 32)
    with pytest.warns(DataWarning, match="8x8 single-channel"):
        assert to_nchw(np.zeros((2, 64))).shape == (2, 1, 8, 8)
    with pytest.raises(
        InvalidInputError,
        match=r"shape \(2, 3, 3, 3\): the channel axis could be axis 1 \(CHW\) or axis 3 \(HWC\)",
    ):
        to_nchw(np.zeros((2, 3, 3, 3)))
    with pytest.raises(InvalidInputError, match="neither axis 1 nor axis 3"):
        to_nchw(np.zeros((2, 10, 10, 10)))


def test_folder_classes_cache_and_corrupt_file(tmp_path, monkeypatch):
    root = _folder(tmp_path / "photos")
    (root / "dog" / "broken.png").write_bytes(b"not a png at all")
    with pytest.warns(DataWarning, match=r"skipped 1 unreadable image file\(s\): broken.png"):
        ds = load_images(root)
    assert (
        ds.images.shape == (12, 1, 8, 8)
        and sorted(set(ds.labels)) == ["cat", "dog"]
        and ds.color == "L"
    )
    assert ds.meta["cache"] and (tmp_path / "cache" / "images").is_dir()

    def no_decode(*a, **k):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(images_mod, "decode_paths", no_decode)
    with pytest.warns(DataWarning, match="skipped 1"):
        again = load_images(root)
    np.testing.assert_array_equal(again.images, ds.images)
    with pytest.raises(
        InvalidInputError,
        match=r"1 image file\(s\) could not be read \(broken.png.*set `strict` to false to skip them",
    ):
        load_images(root, strict=True)


def test_empty_folder_and_single_class(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        InvalidInputError,
        match="holds no images in class folders; lay it out as empty/<class>/<image>.png",
    ):
        load_images(tmp_path / "empty")
    _folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(
        InvalidInputError,
        match=r"single class \('cat'\); a classifier needs at least two class folders",
    ):
        load_images(tmp_path / "one")


def test_mixed_sizes_resized_or_refused(tmp_path):
    root = _folder(tmp_path / "p", n=3)
    Image.fromarray(np.zeros((12, 10), np.uint8)).save(root / "cat" / "big.png")
    with pytest.warns(DataWarning, match=r"resized 1 image\(s\) of other sizes to 8x8"):
        ds = load_images(root, cache=False)
    assert ds.images.shape[2:] == (8, 8)
    with pytest.raises(
        InvalidInputError,
        match=r"resizing is off: 'big.png' is 12x10 and 'cat0.png' is 8x8|resizing is off: 'cat0.png' is 8x8 and 'big.png' is 12x10",
    ):
        load_images(root, resize=False, cache=False)
    assert load_images(root, image_size=16, cache=False).images.shape[2:] == (16, 16)


def test_csv_with_image_column(tmp_path):
    root = _folder(tmp_path / "p", n=3, mode="RGB")
    rows = [f"{c}/{c}{i}.png,{c}" for c in ("cat", "dog") for i in range(3)]
    (root / "labels.csv").write_text("path,animal\n" + "\n".join(rows) + "\n")
    ds = load_images(root / "labels.csv", image_column="path", target="animal", cache=False)
    assert ds.images.shape == (6, 3, 8, 8) and ds.target == "animal"
    with pytest.raises(InvalidInputError, match="column 'file' not found"):
        load_images(root / "labels.csv", image_column="file", target="animal")


def test_preprocessor_reads_paths_folders_pil_and_arrays(tmp_path):
    root = _folder(tmp_path / "p", n=2)
    ds = load_images(root, cache=False)
    pre = ImagePreprocessor.fit(ds.images, color="L")
    assert abs(np.mean(pre.normalise(ds.images))) < 1e-5
    files = sorted((root / "cat").glob("*.png"))
    by_path = pre.prepare([str(f) for f in files]).inputs[0]
    by_folder = pre.prepare(root / "cat").inputs[0]
    by_pil = pre.prepare([Image.open(f) for f in files]).inputs[0]
    by_array = pre.prepare(np.stack([np.asarray(Image.open(f)) for f in files])).inputs[0]
    for other in (by_folder, by_pil, by_array):
        np.testing.assert_allclose(by_path, other, rtol=1e-6)
    state = ImagePreprocessor.from_state(pre.state()).state()
    assert state == pre.state()


def test_preprocessor_converts_other_channel_counts(tmp_path):
    pre = ImagePreprocessor.fit(np.full((4, 1, 8, 8), 100, np.uint8), color="L")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8), "RGB").save(tmp_path / "rgb.png")
    with pytest.warns(DataWarning, match=r"converted 1 image\(s\) to L \(1 channel"):
        assert pre.prepare(tmp_path / "rgb.png").inputs[0].shape == (1, 1, 8, 8)
    with pytest.warns(DataWarning, match="have 3 channel"):
        assert pre.prepare(np.zeros((2, 8, 8, 3))).inputs[0].shape == (2, 1, 8, 8)
    assert pre.prepare(np.zeros((16, 16))).inputs[0].shape == (1, 1, 8, 8)  # resized like training


def test_augment_shapes_flip_crop_and_seed():
    assert parse_augment("crop,flip") == ("crop", "flip") and parse_augment("all") == (
        "crop",
        "flip",
        "rotate",
    )
    with pytest.raises(Exception, match="`augment` has 'blur'"):
        parse_augment("crop,blur")
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    flipped = Augment(flip=True)(x.repeat(8, 1, 1, 1), torch.Generator().manual_seed(0))
    assert any(torch.equal(f, x[i % 2].flip(-1)) for i, f in enumerate(flipped))
    assert all(
        torch.equal(f, x[i % 2]) or torch.equal(f, x[i % 2].flip(-1)) for i, f in enumerate(flipped)
    )
    shifted = Augment(crop_padding=2)(x, torch.Generator().manual_seed(1))
    assert shifted.shape == x.shape and set(shifted.unique().tolist()) <= set(
        x.unique().tolist()
    ) | {0.0}
    a = Augment(crop_padding=1, rotate_degrees=10)(x, torch.Generator().manual_seed(3))
    b = Augment(crop_padding=1, rotate_degrees=10)(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_dataset_label_count_must_match():
    with pytest.raises(InvalidInputError, match="4 images but 3 labels"):
        load_images(ImageDataset(np.zeros((4, 1, 8, 8), np.uint8), np.array([0, 1, 0])))
