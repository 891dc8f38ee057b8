"""Compiled CPU kernels (issue #15, item 9): the cache is keyed by the CPU and a library built for another
CPU is rebuilt, never loaded; the kernels check the layers' geometry at call time and fall back to torch's;
metrics.json records whether they ran; loading a bundle builds the kernels its predictions use."""

from __future__ import annotations

import ctypes
import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlpipe.models import native
from dlpipe.models.registry import build_model
from tests.native_kernels import lstm_kernel, stem_kernel  # noqa: F401 - fixtures

# skipped only without a compiler; a compiler that fails to build the kernel fails the test
needs_stem = pytest.mark.usefixtures("stem_kernel")
needs_lstm = pytest.mark.usefixtures("lstm_kernel")
STEM = Path(native.__file__).parent / "stem.c"


# ---------------------------------------------------------------------------- the cache key and its checks
class _Watch:
    """Records every compile (a `cc ... -o` run) and every library handed to dlopen, with its bytes' SHA-256 then."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.compiles: list[list[str]] = []
        self.loaded: list[tuple[str, str]] = []
        run, cdll = subprocess.run, ctypes.CDLL

        def watched_run(args, *a, **kw):  # type: ignore[no-untyped-def]
            if "-o" in args:
                self.compiles.append(list(args))
            return run(args, *a, **kw)

        def watched_cdll(path, *a, **kw):  # type: ignore[no-untyped-def]
            self.loaded.append((str(path), hashlib.sha256(Path(path).read_bytes()).hexdigest()))
            return cdll(path, *a, **kw)

        monkeypatch.setattr(native.subprocess, "run", watched_run)
        monkeypatch.setattr(native.ctypes, "CDLL", watched_cdll)


@pytest.fixture(scope="module")
def two_cpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """stem.c built once as if on CPU "A" and once on CPU "B" (same real CPU: only the identity differs)."""
    if shutil.which("cc") is None and shutil.which("gcc") is None and shutil.which("clang") is None:
        pytest.skip("no C compiler")
    cache = tmp_path_factory.mktemp("pristine")
    mp = pytest.MonkeyPatch()
    mp.setenv("DLPIPE_CACHE_DIR", str(cache))
    built = {}
    try:
        for cpu in ("A", "B"):
            mp.setattr(native, "cpu_identity", lambda cpu=cpu: f"x86_64|flags=cpu-{cpu}")
            result = native._compile(STEM)
            assert result is not None
            built[cpu] = result
    finally:
        mp.undo()
    return {"cache": cache, **built}


@pytest.fixture
def cache(two_cpus: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the two builds as this test's cache, no library loaded yet, this machine = CPU "B"."""
    folder = tmp_path / "cache"
    shutil.copytree(two_cpus["cache"], folder)  # type: ignore[arg-type]
    monkeypatch.setenv("DLPIPE_CACHE_DIR", str(folder))
    monkeypatch.setattr(native, "_libs", {})
    monkeypatch.setattr(native, "cpu_identity", lambda: "x86_64|flags=cpu-B")
    return folder / "native"


def _entry(two_cpus: dict[str, object], cpu: str, folder: Path) -> tuple[Path, str]:
    path, key = two_cpus[cpu]  # type: ignore[misc]
    return folder / Path(path).name, key


def test_the_cache_key_holds_the_cpu_identity(two_cpus: dict[str, object]) -> None:
    (a, key_a), (b, key_b) = two_cpus["A"], two_cpus["B"]  # type: ignore[misc]
    assert a != b and key_a != key_b  # same source, compiler and flags; only the CPU differs
    for path, key, cpu in ((a, key_a, "A"), (b, key_b, "B")):
        sidecar = json.loads(Path(path).with_suffix(".json").read_text())
        assert sidecar["key"] == key and sidecar["cpu"] == f"x86_64|flags=cpu-{cpu}"
        assert sidecar["sha256"] == hashlib.sha256(Path(path).read_bytes()).hexdigest()
        assert key.encode() in Path(path).read_bytes()  # compiled in as dlp_build_key


def test_real_cpu_identity_names_the_flags() -> None:
    cpu = native.cpu_identity()
    if cpu is None:
        pytest.skip("/proc/cpuinfo lists no flags here: the portable flag set is used")
    assert ("flags=" in cpu or "Features=" in cpu) and cpu.startswith(
        __import__("platform").machine()
    )


def test_a_verified_entry_is_loaded_without_a_compile(
    cache: Path, two_cpus: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = _Watch(monkeypatch)
    assert native.load_stem() is not None
    b, _ = _entry(two_cpus, "B", cache)
    assert watch.compiles == [] and [p for p, _ in watch.loaded] == [str(b)]


def _foreign_copy(
    cache: Path, two_cpus: dict[str, object], *, sidecar: str
) -> tuple[Path, str, str]:
    """Put CPU A's library under CPU B's file name, with B's sidecar kept, A's copied, or none."""
    (a, _), (b, key_b) = _entry(two_cpus, "A", cache), _entry(two_cpus, "B", cache)
    shutil.copyfile(a, b)
    if sidecar == "foreign":
        shutil.copyfile(a.with_suffix(".json"), b.with_suffix(".json"))
    elif sidecar == "none":
        b.with_suffix(".json").unlink()
    elif (
        sidecar == "forged"
    ):  # names B's key and the foreign bytes' checksum: the bytes still lack B's key
        info = json.loads(b.with_suffix(".json").read_text())
        info["sha256"] = hashlib.sha256(a.read_bytes()).hexdigest()
        b.with_suffix(".json").write_text(json.dumps(info))
    return b, key_b, hashlib.sha256(a.read_bytes()).hexdigest()


@pytest.mark.parametrize("sidecar", ["kept", "foreign", "none", "forged"])
def test_a_library_built_for_another_cpu_is_rebuilt_never_loaded(
    cache: Path, two_cpus: dict[str, object], monkeypatch: pytest.MonkeyPatch, sidecar: str
) -> None:
    b, key_b, foreign = _foreign_copy(cache, two_cpus, sidecar=sidecar)
    watch = _Watch(monkeypatch)
    lib = native.load_stem()
    assert lib is not None
    assert len(watch.compiles) == 1  # rebuilt for this CPU
    assert all(
        sha != foreign for _, sha in watch.loaded
    )  # the other CPU's bytes were never handed to dlopen
    assert (
        key_b.encode() in b.read_bytes()
        and json.loads(b.with_suffix(".json").read_text())["key"] == key_b
    )
    assert (ctypes.c_char * 65).in_dll(lib, "dlp_build_key").value.decode() == key_b


def test_a_corrupted_key_in_the_sidecar_means_a_rebuild(
    cache: Path, two_cpus: dict[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    b, key_b = _entry(two_cpus, "B", cache)
    info = json.loads(b.with_suffix(".json").read_text())
    b.with_suffix(".json").write_text(json.dumps({**info, "key": "0" * 64}))
    watch = _Watch(monkeypatch)
    assert native.load_stem() is not None and len(watch.compiles) == 1
    assert json.loads(b.with_suffix(".json").read_text())["key"] == key_b


def test_a_library_whose_compiled_key_differs_is_never_called(two_cpus: dict[str, object]) -> None:
    """The last check, after dlopen (which runs none of our code): the data symbol must hold the expected key."""
    (a, _), (_, key_b) = two_cpus["A"], two_cpus["B"]  # type: ignore[misc]
    assert native._open(Path(a), key_b, "stem") is None


# ---------------------------------------------------------------------------- the first-block kernel: call-time checks
def _cnn() -> nn.Module:
    spec = {
        "family": "cnn",
        "in_channels": 1,
        "image_size": [12, 12],
        "n_outputs": 3,
        "channels": [16],
        "kernel_size": 3,
        "padding": 1,
        "batch_norm": False,
        "pool": 2,
        "dense": [],
        "dropout": 0.0,
        "activation": "relu",
    }
    return build_model(spec).train()


SWAPS = {
    "reflect-padding": lambda m: m.features.__setitem__(
        0, nn.Conv2d(1, 16, 3, padding=1, padding_mode="reflect")
    ),
    "replicate-padding": lambda m: m.features.__setitem__(
        0, nn.Conv2d(1, 16, 3, padding=1, padding_mode="replicate")
    ),
    "stride-2": lambda m: m.features.__setitem__(0, nn.Conv2d(1, 16, 3, stride=2, padding=1)),
    "dilation-2": lambda m: m.features.__setitem__(0, nn.Conv2d(1, 16, 3, padding=2, dilation=2)),
    "uneven-padding": lambda m: m.features.__setitem__(0, nn.Conv2d(1, 16, 3, padding=(1, 0))),
    "non-square-kernel": lambda m: m.features.__setitem__(
        0, nn.Conv2d(1, 16, (3, 5), padding=(1, 2))
    ),
    "even-kernel-same": lambda m: m.features.__setitem__(0, nn.Conv2d(1, 16, 4, padding="same")),
    "grouped": lambda m: m.features.__setitem__(0, nn.Conv2d(2, 16, 3, padding=1, groups=2)),
    "pool-3": lambda m: m.features.__setitem__(1, nn.MaxPool2d(3)),
    "pool-stride-1": lambda m: m.features.__setitem__(1, nn.MaxPool2d(2, stride=1)),
    "pool-ceil": lambda m: m.features.__setitem__(1, nn.MaxPool2d(2, ceil_mode=True)),
    "avg-pool": lambda m: m.features.__setitem__(1, nn.AvgPool2d(2)),
    "leaky-relu": lambda m: m.features.__setitem__(2, nn.LeakyReLU(0.1)),
    "hooked-conv": lambda m: m.features[0].register_forward_hook(lambda mod, i, o: o * 2),
    # covered by the kernel: it must run and agree
    "no-bias": lambda m: m.features.__setitem__(0, nn.Conv2d(1, 16, 3, padding=1, bias=False)),
    "same-string": lambda m: m.features.__setitem__(0, nn.Conv2d(1, 16, 3, padding="same")),
    "valid-string": lambda m: m.features.__setitem__(0, nn.Conv2d(1, 16, 3, padding="valid")),
    "two-input-channels": lambda m: m.features.__setitem__(0, nn.Conv2d(2, 16, 3, padding=1)),
}
RUNS_KERNEL = {"no-bias", "same-string", "valid-string", "two-input-channels"}


@needs_stem
@pytest.mark.filterwarnings(
    "ignore:Using padding='same' with even kernel:UserWarning"
)  # torch's own note on the even-kernel case
@pytest.mark.parametrize("swap", list(SWAPS))
def test_a_layer_swapped_in_after_construction_gives_torchs_outputs_and_gradients(
    swap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    model = _cnn()
    SWAPS[swap](model)
    model.classifier = nn.Flatten()  # compare the block's own output, whatever its shape now
    cin = model.features[0].in_channels
    x = torch.randn(
        6, cin, 12, 12
    )  # NCHW: channels_last tensors run torch's kernels (faster there)

    def forward() -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = model(x)
        g = torch.linspace(-1, 1, out.numel()).view_as(out)
        return out.detach(), list(torch.autograd.grad(out, list(model.parameters()), g))

    assert native.load_stem() is not None
    got = forward()
    monkeypatch.setitem(native._libs, "stem", None)  # torch's kernels only: the reference
    want = forward()
    torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-5)
    for a, b in zip(got[1], want[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(b.abs().max())))
    from dlpipe.models.fused import kernels_used

    assert model._stem == (swap in RUNS_KERNEL)
    assert kernels_used(model)["stem"] == (swap in RUNS_KERNEL)


@needs_stem
def test_the_kernel_writes_float32_whatever_the_default_dtype(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dlpipe.models.fused import conv_pool_relu

    conv = nn.Conv2d(1, 16, 3)
    x = torch.randn(4, 1, 10, 10)
    ref = torch.relu(F.max_pool2d(conv(x), 2))
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        out = conv_pool_relu(x, conv)
    finally:
        torch.set_default_dtype(previous)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- the LSTM kernel: call-time checks
@needs_lstm
def test_an_input_of_the_wrong_width_gets_torchs_error_not_the_kernel() -> None:
    from dlpipe.models.fused import lstm_sequence

    lstm = nn.LSTM(3, 32, batch_first=True)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        lstm_sequence(lstm, torch.randn(2, 5, 4))  # the kernel would read past each weight row


@needs_lstm
def test_lstm_weights_swapped_for_other_shapes_run_torchs_lstm() -> None:
    from dlpipe.models.fused import lstm_applies

    lstm = nn.LSTM(3, 32, batch_first=True)
    x = torch.randn(2, 5, 3)
    assert lstm_applies(lstm, x)
    lstm.weight_hh_l0 = nn.Parameter(torch.randn(128, 16))  # no longer (4H, H)
    assert not lstm_applies(lstm, x)
    lstm = nn.LSTM(3, 32, batch_first=True)
    lstm.bias_ih_l0 = nn.Parameter(torch.randn(128).double())
    assert not lstm_applies(lstm, x)


@needs_lstm
def test_a_hooked_or_subclassed_lstm_runs_its_own_forward() -> None:
    from dlpipe.models.fused import lstm_sequence

    lstm = nn.LSTM(3, 32, batch_first=True)
    calls: list[int] = []
    lstm.register_forward_hook(lambda m, i, o: calls.append(1))
    x = torch.randn(2, 5, 3)
    out = lstm_sequence(lstm, x)
    assert calls == [1]  # the kernel would have skipped the hook
    torch.testing.assert_close(out, lstm(x)[0])

    class Scaled(nn.LSTM):
        def forward(self, x, hx=None):  # type: ignore[no-untyped-def, override]
            out, state = super().forward(x, hx)
            return out * 3, state

    scaled = Scaled(3, 32, batch_first=True)
    torch.testing.assert_close(lstm_sequence(scaled, x), scaled(x)[0])


# ---------------------------------------------------------------------------- metrics.json and bundle load
@needs_stem
def test_metrics_json_records_which_kernels_ran(tmp_path: Path) -> None:
    import numpy as np

    import dlpipe as dl
    from dlpipe.data.images import ImageDataset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(48, 1, 12, 12), dtype=np.uint8)
    ds = ImageDataset(images, np.arange(48) % 2, name="tiny")
    run = dl.train(  # NCHW: the fused first block runs (channels_last, the default, leaves it to torch)
        ds,
        batch_norm=False,
        channels_last=False,
        epochs=1,
        batch_size=16,
        progress="quiet",
        out=tmp_path / "img",
    )
    env = json.loads((tmp_path / "img" / "metrics.json").read_text())["environment"]
    assert env["native_kernels"] == {"stem": True, "lstm": False}
    assert run.metrics["environment"]["native_kernels"]["stem"] is True
    default = dl.train(ds, batch_norm=False, epochs=1, batch_size=16, progress="quiet", save=False)
    assert default.metrics["environment"]["native_kernels"]["stem"] is False


@needs_lstm
def test_loading_an_lstm_bundle_builds_its_kernel_before_the_first_prediction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    import dlpipe as dl

    y = np.sin(np.arange(120) / 6)
    dl.train(
        {"y": y},
        "y",
        task="forecast",
        lookback=8,
        model={"family": "lstm", "hidden": [16]},
        epochs=1,
        progress="quiet",
        out=tmp_path / "lstm",
    )
    monkeypatch.setenv("DLPIPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "_libs", {})
    watch = _Watch(monkeypatch)
    bundle = dl.load_bundle(tmp_path / "lstm" / "bundle")
    assert len(watch.compiles) == 1 and "lstm" in watch.compiles[0][-1]  # built at load
    bundle.predict({"y": y[:40]})
    assert len(watch.compiles) == 1 and len(watch.loaded) == 1  # nothing more when it predicts
    from dlpipe.models.fused import kernels_used

    assert kernels_used(bundle.model)["lstm"] is True  # the kernel runs in inference too


def test_a_table_bundle_builds_no_kernel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, binary_frame
) -> None:  # type: ignore[no-untyped-def]
    import dlpipe as dl

    dl.train(binary_frame, "y", epochs=1, progress="quiet", out=tmp_path / "t")
    env = json.loads((tmp_path / "t" / "metrics.json").read_text())["environment"]
    assert env["native_kernels"] == {"stem": False, "lstm": False}
    monkeypatch.setattr(native, "_libs", {})
    watch = _Watch(monkeypatch)
    dl.load_bundle(tmp_path / "t" / "bundle")
    assert watch.compiles == [] and watch.loaded == []
