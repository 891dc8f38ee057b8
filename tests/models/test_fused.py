"""The fused first CNN block (models/fused.py, models/native/stem.c) against torch's own kernels."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from dlpipe.models import native
from dlpipe.models.cnn import seed_cnn_spec
from dlpipe.models.fused import conv_pool_relu, stem_applies
from dlpipe.models.registry import build_model
from tests.native_kernels import lstm_kernel, stem_kernel  # noqa: F401 - fixtures

# skipped only without a compiler; a compiler that fails to build the kernel fails the test
needs_kernel = pytest.mark.usefixtures("stem_kernel")


@needs_kernel
@pytest.mark.parametrize(
    "cin, size, padding, kernel, channels",
    [
        (1, 28, 0, 3, 32),  # the seed CNN's first block
        (3, 32, 1, 3, 16),  # RGB, 'same' padding
        (1, 11, 2, 5, 16),  # odd sizes: the last conv row/column takes no part in pooling
        (2, 9, 0, 3, 48),
    ],
)
def test_outputs_and_gradients_match_torch(
    cin: int, size: int, padding: int, kernel: int, channels: int
) -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(cin, channels, kernel, padding=padding)
    x = torch.randn(5, cin, size, size).contiguous(memory_format=torch.channels_last)
    ref = torch.relu(F.max_pool2d(conv(x), 2))
    out = conv_pool_relu(x, conv)
    assert out.shape == ref.shape and out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ref)
    for a, b in zip(
        torch.autograd.grad(out, [conv.weight, conv.bias], g),
        torch.autograd.grad(ref, [conv.weight, conv.bias], g),
    ):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


@needs_kernel
def test_seed_cnn_training_step_matches_the_unfused_model(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = build_model(seed_cnn_spec()).train()
    assert model._stem
    x = torch.randn(16, 1, 28, 28)
    y = torch.randint(0, 10, (16,))

    def loss_and_grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        loss = F.cross_entropy(model(x), y)
        return loss.detach(), list(torch.autograd.grad(loss, list(model.parameters())))

    assert stem_applies(model.features[0], x)
    fused = loss_and_grads()
    monkeypatch.setitem(native._libs, "stem", None)  # as on a machine without a C compiler
    assert not stem_applies(model.features[0], x)
    plain = loss_and_grads()
    torch.testing.assert_close(fused[0], plain[0], rtol=1e-5, atol=1e-6)
    for a, b in zip(fused[1], plain[1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


def test_the_fused_path_is_for_training_steps_only() -> None:
    conv = torch.nn.Conv2d(1, 32, 3)
    x = torch.randn(2, 1, 10, 10)
    with torch.no_grad():
        assert not stem_applies(conv, x)  # evaluation and prediction run the modules
    assert not stem_applies(conv, x.requires_grad_())  # an input that needs a gradient
    assert not stem_applies(
        torch.nn.Conv2d(1, 8, 3), torch.randn(2, 1, 10, 10)
    )  # 8 channels: not a multiple of 16
    assert not build_model(
        {**seed_cnn_spec(), "batch_norm": True}
    )._stem  # batch norm sits between conv and pool


_NO_COMPILER = textwrap.dedent("""
    import torch, torch.nn.functional as F
    from dlpipe.models import native
    from dlpipe.models.cnn import seed_cnn_spec
    from dlpipe.models.registry import build_model
    print(native.load_stem())
    model = build_model(seed_cnn_spec()).train()
    loss = F.cross_entropy(model(torch.randn(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    print(bool(torch.isfinite(loss)))
""")


@pytest.mark.parametrize(
    "env", [{"DLPIPE_NATIVE": "0"}, {"CC": "/bin/false"}], ids=["switched-off", "compiler-fails"]
)
def test_without_the_kernel_the_model_trains_with_torchs(tmp_path, env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-c", _NO_COMPILER],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DLPIPE_CACHE_DIR": str(tmp_path), **env},
    ).stdout.split()
    assert out == ["None", "True"]
    assert not list((tmp_path / "native").glob("*.so")) if (tmp_path / "native").exists() else True


@needs_kernel
def test_digits_without_batch_norm_train_as_well_fused_as_unfused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np
    from sklearn.datasets import load_digits

    import dlpipe as dl
    from dlpipe.data.images import ImageDataset

    d = load_digits()
    ds = ImageDataset(d.images.astype(np.uint8)[:, None], d.target, name="digits")
    runs = {}
    for mode in ("fused", "torch"):
        if mode == "torch":
            monkeypatch.setitem(native._libs, "stem", None)
        run = dl.train(
            ds,
            batch_norm=False,
            epochs=8,
            batch_size=64,
            learning_rate=3e-3,
            schedule="onecycle",
            progress="quiet",
            save=False,
        )
        runs[mode] = run.metrics["test"]["model"]["accuracy"]
    assert min(runs.values()) >= 0.95, runs
    assert abs(runs["fused"] - runs["torch"]) <= 0.02, runs


needs_lstm_kernel = pytest.mark.usefixtures("lstm_kernel")


@needs_lstm_kernel
@pytest.mark.parametrize(
    "n_in, hidden, layers, batch", [(1, 32, 1, 32), (3, 16, 2, 5), (12, 64, 1, 7), (2, 48, 3, 1)]
)
def test_lstm_layers_match_torch(n_in: int, hidden: int, layers: int, batch: int) -> None:
    from dlpipe.models.fused import lstm_applies, lstm_sequence

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(n_in, hidden, num_layers=layers, batch_first=True)
    x = torch.randn(batch, 9, n_in, requires_grad=True)
    assert lstm_applies(lstm, x)
    ref, out = lstm(x)[0], lstm_sequence(lstm, x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=2e-6)
    g = torch.randn_like(ref)
    wanted = [x, *lstm.parameters()]
    for a, b in zip(torch.autograd.grad(out, wanted, g), torch.autograd.grad(ref, wanted, g)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * max(1.0, float(b.abs().max())))


def test_lstm_kernel_is_skipped_where_it_does_not_apply() -> None:
    from dlpipe.models.fused import lstm_applies

    x = torch.randn(2, 5, 3)
    assert not lstm_applies(torch.nn.LSTM(3, 20, batch_first=True), x)  # 20: not a multiple of 16
    assert not lstm_applies(torch.nn.LSTM(3, 128, batch_first=True), x)  # where oneDNN is faster
    assert not lstm_applies(torch.nn.LSTM(3, 32, batch_first=True, bidirectional=True), x)
    assert not lstm_applies(torch.nn.GRU(3, 32, batch_first=True), x)
    assert not lstm_applies(torch.nn.LSTM(3, 32, batch_first=True).double(), x.double())


@needs_lstm_kernel
def test_forecaster_trains_the_same_with_either_lstm(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from dlpipe.tasks.losses import MSELoss
    from dlpipe.training import TensorData, Trainer

    t = np.arange(600, dtype=np.float32)
    x = torch.from_numpy(
        np.stack([np.sin((t[i : i + 20] + 0.0) / 8) for i in range(560)])[:, :, None].astype(
            np.float32
        )
    )
    y = torch.from_numpy(np.sin(t[20:580] / 8)[:, None].astype(np.float32))
    losses = {}
    for mode in ("compiled", "torch"):
        if mode == "torch":
            monkeypatch.setitem(native._libs, "lstm", None)
        torch.manual_seed(0)
        model = build_model(
            {"family": "lstm", "n_features": 1, "n_outputs": 1, "hidden": [32], "forecast": True}
        )
        history = Trainer(
            epochs=15, batch_size=32, learning_rate=3e-3, device="cpu", threads=1
        ).fit(model, MSELoss(), TensorData((x,), y))
        losses[mode] = history.records[-1]["loss"]
    assert losses["compiled"] < 0.01 and losses["torch"] < 0.01, losses
    assert abs(losses["compiled"] - losses["torch"]) < 0.2 * max(losses.values()) + 1e-4, losses


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_the_kernel_thread_pool_survives_a_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    """A forked child must start its own worker thread, not wait on the parent's (which it lacks)."""
    import time

    from dlpipe.models import fused

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    seen: list[tuple[int, int]] = []
    fused._halves(
        16, lambda lo, hi: seen.append((lo, hi))
    )  # the parent's pool and its thread exist now
    assert sorted(seen) == [(0, 8), (8, 16)]
    pid = os.fork()
    if pid == 0:  # child: run on both halves again, then leave at once
        try:
            fused._halves(16, lambda lo, hi: None)
            os._exit(0)
        except BaseException:
            os._exit(1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("the forked child waited forever on the parent's kernel thread")


def test_lstm_kernel_runs_by_default_only_on_avx512_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from dlpipe.models import fused, native

    lstm, x = torch.nn.LSTM(3, 32, batch_first=True), torch.randn(2, 5, 3)
    monkeypatch.delenv("DLPIPE_LSTM_KERNEL", raising=False)
    monkeypatch.setattr(fused, "cpu_flags", lambda: frozenset({"avx", "avx2", "fma"}))
    assert (
        not fused.lstm_kernel_wanted()
    )  # AVX2: oneDNN was 2.4-4x faster (the kernel's vectors spill)
    assert not fused.lstm_applies(lstm, x)
    monkeypatch.setattr(fused, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert fused.lstm_kernel_wanted()
    monkeypatch.setenv("DLPIPE_LSTM_KERNEL", "0")
    assert not fused.lstm_kernel_wanted()
    monkeypatch.setenv("DLPIPE_LSTM_KERNEL", "1")
    monkeypatch.setattr(fused, "cpu_flags", lambda: frozenset())
    assert fused.lstm_kernel_wanted()
    assert fused.lstm_applies(lstm, x) == (native.load_lstm() is not None)
    assert isinstance(native.cpu_flags(), frozenset)  # the real reader: this machine's flags


def test_the_fused_first_block_leaves_channels_last_to_torch() -> None:
    """dl.train's images are channels_last: there torch's kernels beat the fused block on this CPU (seed
    CNN, batch 64, one thread: 7.5 vs 12.2 ms forward+backward), so it runs only on NCHW tensors."""
    model = build_model(seed_cnn_spec()).train()
    x = torch.randn(4, 1, 28, 28)
    assert stem_applies(model.features[0], x) == (native.load_stem() is not None)
    cl = model.to(
        memory_format=torch.channels_last
    )  # a 1-channel input looks alike; the weight does not
    assert not stem_applies(cl.features[0], x.contiguous(memory_format=torch.channels_last))
    three = torch.nn.Conv2d(3, 16, 3)
    x3 = torch.randn(4, 3, 12, 12)
    assert stem_applies(three, x3) == (native.load_stem() is not None)
    assert not stem_applies(three, x3.contiguous(memory_format=torch.channels_last))
