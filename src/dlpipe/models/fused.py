"""A plain CNN's first block (convolution, 2x2 max-pool, ReLU) as one pass while training on the CPU.

The first block of a CNN without batch norm (the seed notes' network, LeNet-style tutorial CNNs)
sees few input channels and the largest maps. On the CPU its torch kernels are memory-bound: the
convolution writes a full-size map (64 x 32 x 26 x 26 floats for the seed CNN at batch 64),
max-pool reads it and keeps indices, ReLU passes over the pooled map, max-pool's backward
zero-fills a full-size gradient and scatters into it, and the convolution's weight gradient reads
that again. The fused kernels (native/stem.c) compute each pooled output from the image directly,
keep one winner index per output, and form the weight and bias gradients from the pooled gradient
alone (only a window's winner has one), so no full-size map exists in either direction. Measured
on this project's machine: forward+backward of that block 1.1-1.6 ms on one thread against
5.5 ms for torch's three kernels on two (benchmarks/cnn_throughput.py has the whole-step figures).

``CNN.forward`` takes this path only while training on the CPU in float32 with gradients on, with
an input that needs no gradient, a channel count that is a multiple of 16, and no autocast,
tracing, scripting, export or compiling, when the kernels could be built (native/__init__.py);
evaluation, prediction and every other case run the model's own modules, whose state_dict keys are
unchanged. Outputs match torch's to float32 rounding and gradients to ~1e-6 relative
(tests/models/test_fused.py). ``DLPIPE_NATIVE=0`` turns it off.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dlpipe.models.native import load_stem

__all__ = ["conv_pool_relu", "stem_applies"]


def stem_applies(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """True when :func:`conv_pool_relu` can stand in for conv -> MaxPool2d(2) -> ReLU on ``x`` now."""
    if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
        return False
    return (torch.is_grad_enabled() and not x.requires_grad and x.dim() == 4 and x.device.type == "cpu"
            and x.dtype == torch.float32 and conv.weight.dtype == torch.float32 and conv.out_channels % 16 == 0
            and not torch.is_autocast_enabled("cpu") and load_stem() is not None)


class _ConvPoolReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, padding: int) -> torch.Tensor:
        lib = load_stem()
        assert lib is not None
        xp = F.pad(x.detach(), (padding,) * 4) if padding else x.detach()
        xp = xp.contiguous()  # NCHW: a kernel row of one channel is contiguous
        N, cin, Hp, Wp = xp.shape
        C, _, K, _ = weight.shape
        Ho, Wo = (Hp - K + 1) // 2, (Wp - K + 1) // 2
        w = weight.detach().permute(1, 2, 3, 0).contiguous()  # (Cin, K, K, C)
        b = bias.detach().contiguous()
        out = torch.empty((N, C, Ho, Wo), memory_format=torch.channels_last)
        idx = torch.empty((N, Ho, Wo, C), dtype=torch.uint8)
        if lib.dlp_stem_forward(xp.data_ptr(), N, cin, Hp, Wp, w.data_ptr(), b.data_ptr(), C, K, out.data_ptr(), idx.data_ptr()):
            raise RuntimeError("dlpipe's fused first-block kernel refused its input (a channel count not a multiple of 16)")
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
        g = grad.permute(0, 2, 3, 1).contiguous()  # (N, Ho, Wo, C): free for a channels_last gradient
        dw = torch.empty(cin, K, K, C)
        db = torch.empty(C)
        if lib.dlp_stem_backward(g.data_ptr(), xp.data_ptr(), idx.data_ptr(), N, cin, Hp, Wp, C, K, dw.data_ptr(), db.data_ptr()):
            raise RuntimeError("dlpipe's fused first-block kernel refused its input (a channel count not a multiple of 16)")
        return None, dw.permute(3, 0, 1, 2), db if ctx.needs_input_grad[2] else None, None


def conv_pool_relu(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``relu(max_pool2d(conv(x), 2))`` for a stride-1 convolution, in one pass (see the module doc)."""
    bias = conv.bias if conv.bias is not None else torch.zeros(conv.out_channels)
    pad = conv.padding[0] if isinstance(conv.padding, tuple) else 0
    return _ConvPoolReLU.apply(x, conv.weight, bias, int(pad))  # type: ignore[no-any-return]
