"""Compiled CPU paths (models/native/*.c) for two layers whose torch kernels dominate small models' steps.

**A plain CNN's first block** (convolution, 2x2 max-pool, ReLU; no batch norm: the seed notes'
network, LeNet-style tutorial CNNs) sees few input channels and the largest maps. Its torch kernels
are memory-bound: the convolution writes a full-size map (64 x 32 x 26 x 26 floats for the seed CNN
at batch 64), max-pool reads it, ReLU passes over the pooled map, max-pool's backward zero-fills a
full-size gradient and scatters into it, and the weight gradient reads that again. ``stem.c``
computes each pooled output from the image directly, keeps one winner index per output, and forms
the weight and bias gradients from the pooled gradient alone (only a window's winner has one): no
full-size map in either direction. Forward+backward of the seed CNN's block: 1.1-1.6 ms on one
thread against 5.5 ms for torch's three kernels on two. ``CNN.forward`` uses it while training
(float32 CPU, NCHW tensors — channels_last runs torch's faster kernels —, gradients on, an input that
needs none, channels a multiple of 16), after checking on
every call that its first three layers are still what the kernel computes (:func:`stem_geometry`:
stride 1, zero padding even on all sides, no dilation or groups, a square kernel, a 2x2 stride-2
max-pool, ReLU, no hooks); a layer swapped in later (reflect padding, stride 2) runs torch's kernels.

**An LSTM layer** (unidirectional, zero initial state, hidden size a multiple of 16 up to 64; by default
only on CPUs with AVX-512, see :func:`lstm_kernel_wanted`): oneDNN's
LSTM costs ~0.3 ms forward / ~1.2 ms forward+backward per call before any work, which at
forecasting sizes (hidden 32-64, lookback 30, batch 32) is most of a step. ``lstm.c`` runs the
recurrence in one call each way (gates of two batch rows per weight load, a rational tanh);
the weight and input gradients are then one matrix product each in torch. ``RecurrentNet`` uses
it for its LSTM layers (``lstm_sequence``), in training and in inference, after checking on every
call the module (a plain ``nn.LSTM`` without hooks, every layer's weights in torch's shapes) and the
input's width; loading a bundle builds it (:func:`warm_kernels`), so a server does not in its first
request. :func:`kernels_used` says which kernels ran for a model (metrics.json's
``environment.native_kernels``).

The modules and their state_dict keys stay torch's: a model is saved, loaded and exported exactly
as before, and every call a kernel does not cover (another device or dtype, autocast, tracing,
scripting, ONNX or torch.export, compiling, no C compiler on the machine) runs torch's own kernels.
Outputs and gradients match torch's to float32 rounding (tests/models/test_fused.py).
``DLPIPE_NATIVE=0`` turns both off. Whole-step figures: benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlpipe.models.native import cpu_flags, load_lstm, load_stem

__all__ = [
    "conv_pool_relu",
    "kernels_used",
    "lstm_applies",
    "lstm_kernel_wanted",
    "lstm_sequence",
    "stem_applies",
    "stem_geometry",
    "warm_kernels",
]

_MARK = "_dlpipe_native_kernel"  # set on a module once a compiled kernel has run for it (metrics.json reads it)


def _mark(module: nn.Module, kernel: str) -> None:
    if module.__dict__.get(_MARK) != kernel:
        module.__dict__[_MARK] = (
            kernel  # a plain attribute: not in the state_dict, copied with the module
        )


def kernels_used(model: nn.Module) -> dict[str, bool]:
    """Which compiled kernels ran for ``model`` so far, e.g. ``{"stem": True, "lstm": False}`` (metrics.json's ``environment.native_kernels``)."""
    ran = {m.__dict__.get(_MARK) for m in model.modules()}
    return {"stem": "stem" in ran, "lstm": "lstm" in ran}


def _hooked(*modules: nn.Module) -> bool:
    """A module with forward hooks must run its own forward (the kernel would skip the hooks)."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def _plain_eager() -> bool:
    return not (
        torch.jit.is_scripting()
        or torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
    )


def _stem_padding(conv: nn.Conv2d) -> int | None:
    """The one zero padding on all four sides that the kernel applies, or None when the conv pads otherwise."""
    if conv.padding_mode != "zeros":
        return None  # reflect / replicate / circular: not zeros
    k = conv.kernel_size[0]
    if conv.padding == "valid":
        return 0
    if conv.padding == "same":
        return k // 2 if k % 2 else None  # an even kernel pads unevenly
    ph, pw = conv.padding[0], conv.padding[-1]  # a tuple (ph, pw) once the strings are handled
    return ph if isinstance(ph, int) and ph == pw and len(conv.padding) == 2 else None


def stem_geometry(conv: nn.Module | None, pool: nn.Module | None, act: nn.Module | None) -> bool:
    """True when ``conv -> pool -> act`` is exactly what ``stem.c`` computes: a stride-1, undilated, ungrouped,
    zero-padded (evenly) square-kernel float32 ``nn.Conv2d``, a 2x2 stride-2 ``nn.MaxPool2d`` without padding,
    dilation, ceil mode or indices, and an ``nn.ReLU``; none with forward hooks. Checked on every call, so a
    layer swapped in after construction runs torch's kernels."""
    if type(conv) is not nn.Conv2d or type(pool) is not nn.MaxPool2d or type(act) is not nn.ReLU:
        return False
    k = conv.kernel_size
    pk, ps, pp, pd = (
        v if isinstance(v, tuple) else (v, v)
        for v in (pool.kernel_size, pool.stride, pool.padding, pool.dilation)
    )
    return (
        conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and k[0] == k[1]
        and _stem_padding(conv) is not None
        and conv.weight.dim() == 4
        and tuple(conv.weight.shape[2:]) == tuple(k)
        and conv.weight.shape[1] == conv.in_channels
        and (
            conv.bias is None
            or (
                conv.bias.dtype == torch.float32
                and conv.bias.device.type == "cpu"
                and tuple(conv.bias.shape) == (conv.out_channels,)
            )
        )
        and pk == (2, 2)
        and ps == (2, 2)
        and pp == (0, 0)
        and pd == (1, 1)
        and not pool.ceil_mode
        and not pool.return_indices
        and not _hooked(conv, pool, act)
    )


def _nchw(t: torch.Tensor) -> bool:
    """True when ``t`` has row-major (NCHW) strides, not channels_last ones: torch picks its channels_last
    convolution path from the input's or the weight's strides."""
    want, acc = [], 1
    for size in reversed(t.shape):
        want.append(acc)
        acc *= size
    return tuple(t.stride()) == tuple(reversed(want))


def stem_applies(
    conv: nn.Module, x: torch.Tensor, pool: nn.Module | None = None, act: nn.Module | None = None
) -> bool:
    """True when :func:`conv_pool_relu` can stand in for ``conv -> pool -> act`` on ``x`` now (``pool``/``act``:
    the layers that follow; by default a 2x2 ``nn.MaxPool2d`` and ``nn.ReLU``). Checked at call time."""
    if not _plain_eager():
        return False
    if not (
        torch.is_grad_enabled()
        and not x.requires_grad
        and x.dim() == 4
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
    ):
        return False
    if not stem_geometry(
        conv, nn.MaxPool2d(2) if pool is None else pool, nn.ReLU() if act is None else act
    ):
        return False
    assert isinstance(conv, nn.Conv2d)
    pad, k = _stem_padding(conv), conv.kernel_size[0]
    assert pad is not None
    return (
        conv.weight.dtype == torch.float32
        and conv.weight.device.type == "cpu"
        # channels_last (dl.train's image default): torch's channels_last kernels beat this one here
        # (seed CNN block at batch 64, one thread: 7.5 vs 12.2 ms forward+backward; whole step 1,136 vs
        # 824 images/s, benchmarks/cnn_throughput.py), while on NCHW tensors it beats torch's 22.8 ms
        and _nchw(x)
        and _nchw(conv.weight)
        and conv.out_channels % 16 == 0
        and x.shape[1] == conv.in_channels
        and x.shape[0] >= 1
        and min(x.shape[2], x.shape[3]) + 2 * pad - k + 1 >= 2  # at least one pooled output
        and load_stem() is not None
    )


_pool: list[Any] = []
if hasattr(os, "register_at_fork"):  # a forked child has no worker thread: let it start its own
    os.register_at_fork(after_in_child=_pool.clear)


def _halves(n: int, run: Any) -> None:
    """``run(lo, hi)`` over rows [0, n): two halves at once on two threads when torch may use two or
    more (the kernels release the GIL: ctypes calls do), else one call."""
    if n < 8 or torch.get_num_threads() < 2:
        run(0, n)
        return
    if not _pool:
        from concurrent.futures import ThreadPoolExecutor

        _pool.append(ThreadPoolExecutor(1, thread_name_prefix="dlpipe-kernel"))
    half = n // 2
    other = _pool[0].submit(run, half, n)
    run(0, half)
    other.result()


def _check(status: int) -> None:
    if status:
        raise RuntimeError(
            "dlpipe's fused first-block kernel refused its input (a channel count not a multiple of 16)"
        )


class _ConvPoolReLU(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int
    ) -> torch.Tensor:
        lib = load_stem()
        assert lib is not None
        xp = F.pad(x.detach(), (padding,) * 4) if padding else x.detach()
        xp = xp.contiguous()  # NCHW: a kernel row of one channel is contiguous
        N, cin, Hp, Wp = xp.shape
        C, _, K, _ = weight.shape
        Ho, Wo = (Hp - K + 1) // 2, (Wp - K + 1) // 2
        w = weight.detach().permute(1, 2, 3, 0).contiguous()  # (Cin, K, K, C)
        b = bias.detach().contiguous()
        out = torch.empty(
            (N, C, Ho, Wo), dtype=torch.float32, device="cpu", memory_format=torch.channels_last
        )
        idx = torch.empty((N, Ho, Wo, C), dtype=torch.uint8, device="cpu")
        in_row, out_row = cin * Hp * Wp, Ho * Wo * C  # elements per image

        def run(lo: int, hi: int) -> None:
            _check(
                lib.dlp_stem_forward(
                    xp.data_ptr() + 4 * lo * in_row,
                    hi - lo,
                    cin,
                    Hp,
                    Wp,
                    w.data_ptr(),
                    b.data_ptr(),
                    C,
                    K,
                    out.data_ptr() + 4 * lo * out_row,
                    idx.data_ptr() + lo * out_row,
                )
            )

        _halves(N, run)
        ctx.save_for_backward(xp, idx)
        ctx.weight_shape = tuple(weight.shape)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        lib = load_stem()
        assert lib is not None
        xp, idx = ctx.saved_tensors
        N, cin, Hp, Wp = xp.shape
        C, _, K, _ = ctx.weight_shape
        g = (
            grad.float().permute(0, 2, 3, 1).contiguous()
        )  # (N, Ho, Wo, C): free for a channels_last gradient
        f32, cpu = (
            torch.float32,
            torch.device("cpu"),
        )  # the kernels write float32, whatever torch's defaults
        dw, db = (
            torch.empty(2, cin, K, K, C, dtype=f32, device=cpu),
            torch.empty(2, C, dtype=f32, device=cpu),
        )  # one partial sum per half
        Ho, Wo = g.shape[1], g.shape[2]
        in_row, out_row = cin * Hp * Wp, Ho * Wo * C
        parts: list[int] = []

        def run(lo: int, hi: int) -> None:
            k = 0 if lo == 0 else 1
            parts.append(k)
            _check(
                lib.dlp_stem_backward(
                    g.data_ptr() + 4 * lo * out_row,
                    xp.data_ptr() + 4 * lo * in_row,
                    idx.data_ptr() + lo * out_row,
                    hi - lo,
                    cin,
                    Hp,
                    Wp,
                    C,
                    K,
                    dw[k].data_ptr(),
                    db[k].data_ptr(),
                )
            )

        _halves(N, run)
        d_w, d_b = (dw[0], db[0]) if len(parts) == 1 else (dw[0] + dw[1], db[0] + db[1])
        return None, d_w.permute(3, 0, 1, 2), d_b if ctx.needs_input_grad[2] else None, None


def conv_pool_relu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``relu(max_pool2d(conv(x), 2))`` in one pass (see the module doc); call it only where :func:`stem_applies`."""
    pad = _stem_padding(conv)
    if pad is None or conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1:
        raise ValueError(
            f"conv_pool_relu needs a stride-1, undilated, evenly zero-padded convolution, not {conv!r}; check stem_applies() first."
        )
    bias = (
        conv.bias
        if conv.bias is not None
        else torch.zeros(conv.out_channels, dtype=torch.float32, device="cpu")
    )
    _mark(conv, "stem")
    return _ConvPoolReLU.apply(x, conv.weight, bias, pad)  # type: ignore[no-any-return]


class _LSTMLayer(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        w_ih: torch.Tensor,
        w_hh: torch.Tensor,
        b_ih: torch.Tensor,
        b_hh: torch.Tensor,
    ) -> torch.Tensor:
        lib = load_lstm()
        assert lib is not None
        x = x.detach().contiguous()
        B, T, n_in = x.shape
        H = w_hh.shape[1]
        w_ih, w_hh = w_ih.detach().contiguous(), w_hh.detach().contiguous()
        bias = (b_ih.detach() + b_hh.detach()).contiguous()
        f32, cpu = (
            torch.float32,
            torch.device("cpu"),
        )  # the kernel writes float32, whatever torch's defaults
        hs, cs = (
            torch.empty(T + 1, B, H, dtype=f32, device=cpu),
            torch.empty(T + 1, B, H, dtype=f32, device=cpu),
        )
        acts = torch.empty(T, B, 4 * H, dtype=f32, device=cpu)
        if lib.dlp_lstm_forward(
            x.data_ptr(),
            w_ih.data_ptr(),
            w_hh.data_ptr(),
            bias.data_ptr(),
            B,
            T,
            n_in,
            H,
            hs.data_ptr(),
            cs.data_ptr(),
            acts.data_ptr(),
        ):
            raise RuntimeError(
                "dlpipe's LSTM kernel failed (out of memory, or a hidden size not a multiple of 16)"
            )
        ctx.save_for_backward(x, w_ih, w_hh, hs, cs, acts)
        return hs[1:].transpose(0, 1)  # (B, T, H), a view of the states

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        lib = load_lstm()
        assert lib is not None
        x, w_ih, w_hh, hs, cs, acts = ctx.saved_tensors
        B, T, n_in = x.shape
        H = w_hh.shape[1]
        g = grad.float().contiguous()
        dgates = torch.empty(T, B, 4 * H, dtype=torch.float32, device="cpu")
        if lib.dlp_lstm_backward(
            g.data_ptr(),
            w_hh.data_ptr(),
            cs.data_ptr(),
            acts.data_ptr(),
            B,
            T,
            H,
            dgates.data_ptr(),
        ):
            raise RuntimeError(
                "dlpipe's LSTM kernel failed (out of memory, or a hidden size not a multiple of 16)"
            )
        dg = dgates.view(T * B, 4 * H)
        x_tm = x.transpose(0, 1).reshape(T * B, n_in)  # time-major rows, as dgates
        d_w_ih = dg.t() @ x_tm
        d_w_hh = dg.t() @ hs[:-1].reshape(T * B, H)
        d_b = dg.sum(0)
        d_x = (dg @ w_ih).view(T, B, n_in).transpose(0, 1) if ctx.needs_input_grad[0] else None
        return d_x, d_w_ih, d_w_hh, d_b, d_b


# Above this, oneDNN's blocked matrix products win (hidden 128, batch 64, 50 steps: 37 vs 23 ms);
# at 64 the two are level, at 32 the kernel is ~1.6x faster (benchmarks/RESULTS.md).
_LSTM_MAX_HIDDEN = 64


def _lstm_layout(module: nn.Module) -> bool:
    """What ``lstm.c`` assumes of the module itself: a plain ``nn.LSTM`` (not a subclass with its own forward),
    unidirectional, batch-first, with biases and no projection, hidden a multiple of 16 up to
    ``_LSTM_MAX_HIDDEN``, every layer's weights float32 on the CPU in torch's shapes, and no forward hooks."""
    if (
        type(module) is not nn.LSTM
        or module.bidirectional
        or module.proj_size != 0
        or not module.bias
        or not module.batch_first
    ):
        return False
    H = module.hidden_size
    if H % 16 or H > _LSTM_MAX_HIDDEN or _hooked(module):
        return False
    for layer in range(module.num_layers):
        width = module.input_size if layer == 0 else H
        shapes = {
            "weight_ih": (4 * H, width),
            "weight_hh": (4 * H, H),
            "bias_ih": (4 * H,),
            "bias_hh": (4 * H,),
        }
        for name, shape in shapes.items():
            w = getattr(module, f"{name}_l{layer}", None)
            if (
                not isinstance(w, torch.Tensor)
                or tuple(w.shape) != shape
                or w.dtype != torch.float32
                or w.device.type != "cpu"
            ):
                return False
    return True


def lstm_kernel_wanted() -> bool:
    """Whether ``RecurrentNet`` runs its LSTM layers through ``lstm.c`` here: ``DLPIPE_LSTM_KERNEL=1`` / ``0``
    forces it on / off; by default (``auto``) only on x86 CPUs with AVX-512.

    The kernel keeps 16-wide vectors in registers, which AVX-512's 32 registers hold. It was 1.6x
    oneDNN's step at hidden 32 on the machine of 2026-11-22 (its CPU was not recorded); on the AVX2
    machine of 2026-12-07 (AMD EPYC, 16 registers, so its accumulators spill) it was 2.4-4x *slower* than oneDNN (hidden 32: 15.2 vs 3.9 ms forward+backward,
    batch 32, 30 steps, one thread), and the forecasting loop 0.68x the seed loop against 1.24x with torch's
    kernel (benchmarks/RESULTS.md). ``DLPIPE_NATIVE=0`` turns every kernel off."""
    setting = os.environ.get("DLPIPE_LSTM_KERNEL", "auto").strip().lower()
    if setting in ("1", "on", "true"):
        return True
    if setting in ("0", "off", "false"):
        return False
    return "avx512f" in cpu_flags()


def lstm_applies(module: nn.Module, x: torch.Tensor) -> bool:
    """True when :func:`lstm_sequence` runs ``module`` through the compiled LSTM kernels on ``x`` now (checked at call time)."""
    return (
        _plain_eager()
        and x.dim() == 3
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and _lstm_layout(module)
        and x.shape[2] == module.input_size
        and x.shape[0] >= 1
        and x.shape[1] >= 1
        and lstm_kernel_wanted()
        and load_lstm() is not None
    )


def warm_kernels(model: nn.Module) -> list[str]:
    """Build (or load from the cache) the kernels ``model`` would call when it predicts, and return their names.

    Called when a bundle is loaded, so a server pays the compile (~0.2 s, once per CPU) at start-up, not
    in its first request. The LSTM and MiniRocket kernels run in inference; the first-block kernel is
    training-only.
    """
    from dlpipe.models.minirocket import MiniRocket
    from dlpipe.models.native import load_minirocket

    built = []
    wanted = [m for m in model.modules() if getattr(m, "uses_lstm_kernel", False)]
    if (
        any(_lstm_layout(lstm) for m in wanted for lstm in m.modules() if isinstance(lstm, nn.LSTM))
        and lstm_kernel_wanted()
        and load_lstm() is not None
    ):
        built.append("lstm")
    if any(isinstance(m, MiniRocket) for m in model.modules()) and load_minirocket() is not None:
        built.append("minirocket")
    return built


def lstm_sequence(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Every step's output of ``module`` on ``x`` (B, T, F) from a zero state: ``module(x)[0]``, compiled where it applies."""
    if not isinstance(module, nn.LSTM) or not lstm_applies(module, x):
        return module(x)[0]  # type: ignore[no-any-return]
    h = x
    for layer in range(module.num_layers):
        if layer and module.dropout and module.training:  # nn.LSTM's dropout between layers
            h = F.dropout(h, float(module.dropout), training=True)
        h = _LSTMLayer.apply(
            h,
            *(
                getattr(module, f"{name}_l{layer}")
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
            ),
        )
    _mark(module, "lstm")
    return h  # type: ignore[no-any-return]
