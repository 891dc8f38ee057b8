"""Tampered and malformed bundles (issue #15, items 6, 7 and 5): every file a manifest names must lie inside
the bundle folder and is refused before it is opened; a malformed manifest is one BundleError sentence, never
a KeyError/TypeError; non-finite weights are refused at load; nothing in a bundle is ever executed."""

from __future__ import annotations

import builtins
import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dlpipe as dl
from dlpipe.cli.app import main
from dlpipe.core.errors import BundleError, DlpipeError

SRC = Path(dl.__file__).resolve().parent


def _frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    return pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": rng.choice(["red", "green", "blue"], size=64),
            "y": np.where(x[:, 0] + x[:, 1] > 0, "yes", "no"),
        }
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("trained")
    dl.train(_frame(), "y", epochs=1, progress="quiet", out=root / "run")
    return root / "run" / "bundle"


@pytest.fixture
def bundle(trained: Path, tmp_path: Path) -> Path:
    """A fresh copy of a good table bundle at tmp_path/case/bundle, and rows to predict in tmp_path/rows.csv."""
    target = tmp_path / "case" / "bundle"
    shutil.copytree(trained, target)
    _frame().drop(columns="y").head(5).to_csv(tmp_path / "rows.csv", index=False)
    return target


def _manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "manifest.json").read_text())


def _write(bundle: Path, manifest: Any) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _one_sentence(message: str) -> None:
    assert "\n" not in message and message.endswith(".") and "Traceback" not in message, message


def _cli_predict(bundle: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(["predict", str(bundle), "rows.csv"])
    out, err = capsys.readouterr()
    return rc, out, err


class _Opens:
    """Every path handed to open()/io.open()/os.open() or safetensors' load_file while active."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[str] = []
        real_open, real_io_open, real_os_open = builtins.open, io.open, os.open
        import safetensors.torch as st

        real_load = st.load_file

        def rec(fn):  # type: ignore[no-untyped-def]
            def wrapper(path, *a, **kw):  # type: ignore[no-untyped-def]
                if isinstance(path, (str, os.PathLike)):
                    self.paths.append(os.path.realpath(path))
                return fn(path, *a, **kw)

            return wrapper

        monkeypatch.setattr(builtins, "open", rec(real_open))
        monkeypatch.setattr(io, "open", rec(real_io_open))
        monkeypatch.setattr(os, "open", rec(real_os_open))
        monkeypatch.setattr(st, "load_file", rec(real_load))


# ---------------------------------------------------------------------------- item 6: confinement
OUTSIDE = "a path outside the bundle folder"
LEAVES = "outside the bundle folder \\(a symbolic link\\)"


def test_weights_named_as_etc_passwd_are_refused_before_the_file_is_opened(
    bundle: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    m = _manifest(bundle)
    m["weights"]["file"] = "/etc/passwd"
    _write(bundle, m)
    opens = _Opens(monkeypatch)
    with pytest.raises(
        BundleError, match=f"names its weights file as '/etc/passwd', {OUTSIDE}"
    ) as info:
        dl.load_bundle(bundle)
    _one_sentence(str(info.value))
    rc, out, err = _cli_predict(bundle, capsys)
    assert (
        rc == 2
        and out == ""
        and err.startswith("error: ")
        and err.count("\n") == 1
        and OUTSIDE in err
    )
    assert not [p for p in opens.paths if p == os.path.realpath("/etc/passwd")], opens.paths


def _valid_copy_outside(bundle: Path, where: Path) -> None:
    """A real copy of the weights (right checksum, loads fine) at a place outside the bundle."""
    where.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle / "weights.safetensors", where)


def test_weights_named_through_dotdot_are_refused(
    bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _valid_copy_outside(bundle, tmp_path / "x")
    m = _manifest(bundle)
    m["weights"]["file"] = "../../x"
    _write(bundle, m)
    opens = _Opens(monkeypatch)
    with pytest.raises(BundleError, match=f"names its weights file as '../../x', {OUTSIDE}"):
        dl.load_bundle(bundle)
    assert os.path.realpath(tmp_path / "x") not in opens.paths
    rc, out, err = _cli_predict(bundle, capsys)
    assert rc == 2 and OUTSIDE in err


@pytest.mark.parametrize("name", ["sub/../../../x", "./../x", "..", ".", "/", "", "a\x00b"])
def test_other_escaping_or_empty_names_are_refused(bundle: Path, tmp_path: Path, name: str) -> None:
    _valid_copy_outside(bundle, tmp_path / "x")
    m = _manifest(bundle)
    m["weights"]["file"] = name
    _write(bundle, m)
    with pytest.raises(
        BundleError, match="names its weights file as .*(outside the bundle folder|not a file name)"
    ) as info:
        dl.load_bundle(bundle)
    _one_sentence(str(info.value))


def test_a_symlinked_weights_file_leaving_the_folder_is_refused(
    bundle: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    outside = tmp_path / "elsewhere" / "w.safetensors"
    _valid_copy_outside(bundle, outside)
    (bundle / "weights.safetensors").unlink()
    (bundle / "weights.safetensors").symlink_to(outside)
    opens = _Opens(monkeypatch)
    with pytest.raises(
        BundleError,
        match=f"names its weights file as 'weights.safetensors', which leads to .* {LEAVES}",
    ):
        dl.load_bundle(bundle)
    assert os.path.realpath(outside) not in opens.paths
    rc, _, err = _cli_predict(bundle, capsys)
    assert rc == 2 and "symbolic link" in err


def test_a_weights_file_that_is_a_symlink_inside_the_folder_is_refused(bundle: Path) -> None:
    (bundle / "weights.safetensors").rename(bundle / "real.safetensors")
    (bundle / "weights.safetensors").symlink_to("real.safetensors")
    with pytest.raises(
        BundleError,
        match="weights file 'weights.safetensors' of bundle .* is a symbolic link, which a bundle may not hold",
    ):
        dl.load_bundle(bundle)


def test_a_symlinked_folder_on_the_way_out_is_refused(bundle: Path, tmp_path: Path) -> None:
    _valid_copy_outside(bundle, tmp_path / "out" / "weights.safetensors")
    (bundle / "sub").symlink_to(tmp_path / "out", target_is_directory=True)
    m = _manifest(bundle)
    m["weights"]["file"] = "sub/weights.safetensors"
    _write(bundle, m)
    with pytest.raises(BundleError, match=LEAVES):
        dl.load_bundle(bundle)


def test_a_symlinked_manifest_leaving_the_folder_is_refused(
    bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "m.json"
    shutil.copyfile(bundle / "manifest.json", outside)
    (bundle / "manifest.json").unlink()
    (bundle / "manifest.json").symlink_to(outside)
    opens = _Opens(monkeypatch)
    with pytest.raises(
        BundleError, match=f"names its manifest as 'manifest.json', which leads to .* {LEAVES}"
    ):
        dl.load_bundle(bundle)
    assert os.path.realpath(outside) not in opens.paths


def test_a_symlink_loop_and_a_fifo_are_refused_without_hanging(bundle: Path) -> None:
    (bundle / "loop").symlink_to("loop")
    m = _manifest(bundle)
    m["weights"]["file"] = "loop"
    _write(bundle, m)
    with pytest.raises(BundleError, match="(loop of symbolic links|is a symbolic link)"):
        dl.load_bundle(bundle)
    if not hasattr(os, "mkfifo"):
        return
    os.mkfifo(bundle / "fifo")  # reading it would block forever
    m["weights"]["file"] = "fifo"
    _write(bundle, m)
    with pytest.raises(BundleError, match="weights file 'fifo' of bundle .* is not a regular file"):
        dl.load_bundle(bundle)


@pytest.fixture
def ensemble(bundle: Path, tmp_path: Path) -> Path:
    from dlpipe.ensembles import build_ensemble

    out = tmp_path / "ens"
    build_ensemble([bundle, bundle]).save(out)
    return out


@pytest.mark.parametrize(
    "member", ["../case/bundle", "/etc", "members/../../case/bundle", "members/link"]
)
def test_an_ensemble_member_outside_the_folder_is_refused(
    ensemble: Path, bundle: Path, member: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (ensemble / "members" / "link").symlink_to(bundle.resolve(), target_is_directory=True)
    m = _manifest(ensemble)
    m["members"][1] = member
    _write(ensemble, m)
    with pytest.raises(
        BundleError, match="names its member 1 as .*outside the bundle folder"
    ) as info:
        dl.load_bundle(ensemble)
    _one_sentence(str(info.value))
    rc, _, err = _cli_predict(ensemble, capsys)
    assert rc == 2 and "outside the bundle folder" in err


def test_an_ensemble_loads_as_saved(ensemble: Path) -> None:
    assert len(dl.load_bundle(ensemble).predict(_frame().head(3))) == 3


def test_no_pickle_and_every_torch_load_is_weights_only() -> None:
    """Loading a bundle never runs code from it: no pickle in src/, and torch.load only with weights_only=True."""
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        assert not re.search(
            r"^\s*(import pickle|from pickle|import dill|import cloudpickle|import joblib)",
            text,
            re.M,
        ), path
        assert "allow_pickle=True" not in text, path
        for call in re.finditer(r"torch\.load\(([^()]*(?:\([^()]*\)[^()]*)*)\)", text):
            assert "weights_only=True" in call.group(1), f"{path}: torch.load({call.group(1)})"


# ---------------------------------------------------------------------------- item 5: non-finite weights
@pytest.mark.parametrize(
    "bad", [float("nan"), float("inf"), -float("inf")], ids=["nan", "inf", "-inf"]
)
def test_non_finite_weights_are_refused_at_load(
    bundle: Path, bad: float, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file, save_file

    from dlpipe.bundle.bundle import sha256_file

    state = load_file(str(bundle / "weights.safetensors"))
    name = sorted(state)[0]
    state[name].view(-1)[0] = bad
    save_file(state, str(bundle / "weights.safetensors"))
    m = _manifest(bundle)
    m["weights"]["sha256"] = sha256_file(
        bundle / "weights.safetensors"
    )  # a consistent bundle, only its numbers are bad
    _write(bundle, m)
    with pytest.raises(
        BundleError,
        match=f"weight '{re.escape(name)}' of bundle .* holds 1 NaN or infinite value, so its predictions would be NaN",
    ) as info:
        dl.load_bundle(bundle)
    _one_sentence(str(info.value))
    rc, out, err = _cli_predict(bundle, capsys)
    assert rc == 2 and out == "" and "NaN or infinite" in err


# ---------------------------------------------------------------------------- item 7: a malformed manifest
REQUIRED = {"format", "format_version", "task", "preprocessor", "model_spec", "weights"}
BAD_VALUES = ["text", [1, 2], 7, 1.5, None, True, {}, {"x": 1}]


def _load_or_bundle_error(bundle: Path) -> BundleError | None:
    """Load and predict; the only failure allowed is a DlpipeError (BundleError at load) of one sentence."""
    try:
        b = dl.load_bundle(bundle)
    except BundleError as exc:
        _one_sentence(str(exc))
        return exc
    try:
        b.predict(_frame().drop(columns="y").head(3))
    except DlpipeError as exc:
        _one_sentence(str(exc))
    repr(b), b.metrics, b.classes, b.input_columns  # noqa: B018 - what `dlpipe info`/serving read
    return None


def test_each_top_level_key_removed(bundle: Path) -> None:
    good = _manifest(bundle)
    for key in good:
        _write(bundle, {k: v for k, v in good.items() if k != key})
        exc = _load_or_bundle_error(bundle)
        if key in REQUIRED:
            assert exc is not None, key
            if key not in ("format", "format_version"):
                assert f"`{key}` is missing but must be" in str(exc), str(exc)


def test_each_top_level_key_with_a_wrong_type(bundle: Path) -> None:
    good = _manifest(bundle)
    for key in good:
        for value in BAD_VALUES:
            _write(bundle, {**good, key: value})
            exc = _load_or_bundle_error(bundle)
            if exc is not None and key not in ("format", "format_version") and "`" in str(exc):
                assert f"`{key}" in str(exc), (key, value, str(exc))


@pytest.mark.parametrize("part", ["task", "weights", "model_spec", "preprocessor"])
def test_each_nested_key_removed_or_of_a_wrong_type(bundle: Path, part: str) -> None:
    good = _manifest(bundle)
    for key in good[part]:
        _write(bundle, {**good, part: {k: v for k, v in good[part].items() if k != key}})
        _load_or_bundle_error(bundle)
        for value in BAD_VALUES:
            _write(bundle, {**good, part: {**good[part], key: value}})
            _load_or_bundle_error(bundle)


def test_a_wrong_type_names_the_key_its_value_and_what_was_expected(
    bundle: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _manifest(bundle)
    _write(bundle, {**good, "task": "binary"})
    with pytest.raises(
        BundleError,
        match=r"is damaged: `task` holds 'binary' \(a string\) but must be an object \(\{\.\.\.\}\); re-save the bundle",
    ):
        dl.load_bundle(bundle)
    _write(bundle, {**good, "task": {**good["task"], "y_std": None}})
    with pytest.raises(
        BundleError, match=r"`task.y_std` holds None \(null\) but must be a finite non-zero number"
    ):
        dl.load_bundle(bundle)
    _write(bundle, {**good, "task": {**good["task"], "colour": 1}})
    with pytest.raises(BundleError, match=r"`task.colour` is not a key dlpipe writes"):
        dl.load_bundle(bundle)
    _write(bundle, {**good, "weights": {"file": "weights.safetensors"}})
    with pytest.raises(
        BundleError, match=r"`weights.sha256` is missing but must be a 64-digit hex SHA-256"
    ):
        dl.load_bundle(bundle)
    rc, _, err = _cli_predict(bundle, capsys)
    assert rc == 2 and "`weights.sha256` is missing" in err


@pytest.mark.parametrize("version", [2, 0, "1", 1.0, True, None, [1]])
def test_an_unknown_format_version_is_refused(bundle: Path, version: Any) -> None:
    _write(bundle, {**_manifest(bundle), "format_version": version})
    with pytest.raises(BundleError, match="has format version .* but dlpipe .* reads version 1"):
        dl.load_bundle(bundle)


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda raw: raw[: len(raw) // 2], "is not valid JSON \\(.* at line \\d+, column \\d+\\)"),
        (lambda raw: b"\xff\xfe" + raw, "is not UTF-8 text \\(byte 0xff at offset 0\\)"),
        (lambda raw: raw.replace(b'"binary"', b'"bin\xe9ry"'), "is not UTF-8 text \\(byte 0xe9"),
        (lambda raw: b"[" * 100_000 + b"]" * 100_000, "nests its JSON too deeply"),
        (lambda raw: b"[1, 2, 3]", "is not a dlpipe bundle manifest"),
        (lambda raw: b"", "is not valid JSON"),
    ],
    ids=["truncated", "bom-bytes", "latin-1", "deep", "a-list", "empty"],
)
def test_unreadable_manifests_are_one_sentence(
    bundle: Path, content: Any, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = (bundle / "manifest.json").read_bytes()
    (bundle / "manifest.json").write_bytes(content(raw))
    with pytest.raises(BundleError, match=message) as info:
        dl.load_bundle(bundle)
    _one_sentence(str(info.value))
    rc, out, err = _cli_predict(bundle, capsys)
    assert rc == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1


def test_a_huge_manifest_is_refused_before_it_is_read(
    bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = bundle / "manifest.json"
    with open(path, "ab") as fh:
        fh.truncate(200 * 2**20)  # sparse: 200 MiB on paper, nothing on disk
    opens = _Opens(monkeypatch)
    with pytest.raises(
        BundleError,
        match=r"the manifest of bundle .* is 200\.0 MiB, above the 64 MiB a dlpipe manifest may have, so it was not read",
    ):
        dl.load_bundle(bundle)
    assert os.path.realpath(path) not in opens.paths


def test_an_ensemble_manifest_with_wrong_types_is_one_sentence(ensemble: Path) -> None:
    good = _manifest(ensemble)
    for key, value in [
        ("members", "members/0"),
        ("members", ["members/0"]),
        ("weights", [1.0]),
        ("weights", [float("nan"), 1.0]),
        ("method", "vote"),
        ("members", [0, 1]),
        ("task", None),
    ]:
        _write(ensemble, {**good, key: value})
        with pytest.raises(BundleError, match=f"`{key}` holds .* but must be"):
            dl.load_bundle(ensemble)
    _write(
        ensemble,
        {**good, "method": "stack", "meta": {"coef": [[1.0, 2.0, 3.0]], "intercept": [0.0]}},
    )
    with pytest.raises(BundleError, match=r"`meta.coef` is 1 x 3 but 2 binary members need 1 x 2"):
        dl.load_bundle(ensemble)
    _write(ensemble, {**good, "method": "stack"})
    with pytest.raises(BundleError, match="`meta` is missing"):
        dl.load_bundle(ensemble)


def test_a_model_spec_too_large_for_memory_is_refused_before_allocating(bundle: Path) -> None:
    good = _manifest(bundle)
    _write(
        bundle,
        {**good, "model_spec": {**good["model_spec"], "hidden": [100_000, 100_000, 100_000]}},
    )
    with pytest.raises(
        BundleError,
        match=r"`model_spec` \(family 'mlp'\) describes no model dlpipe can build \(.*needs about [\d.,]+ GB of memory",
    ):
        dl.load_bundle(bundle)


def test_a_classification_task_without_its_labels_or_of_another_width_is_refused(
    bundle: Path,
) -> None:
    good = _manifest(bundle)
    _write(bundle, {**good, "task": {**good["task"], "classes": None}})
    with pytest.raises(
        BundleError,
        match=r"`task.classes` holds None \(null\) but must be a list of exactly 2 class labels",
    ):
        dl.load_bundle(bundle)
    _write(
        bundle, {**good, "task": {**good["task"], "kind": "multiclass", "classes": ["a", "b", "c"]}}
    )
    with pytest.raises(
        BundleError,
        match=r"`model_spec.n_outputs` holds 1 \(an integer\) but must be 3 for a multiclass task of 3 classes",
    ):
        dl.load_bundle(bundle)
