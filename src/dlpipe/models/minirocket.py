"""MiniRocket (Dempster, Schmidt and Webb, 2021): random-convolution features and a ridge head, on torch.

The transform convolves each series with 84 fixed kernels of length 9 (weights -1, and +2 at three of
the nine positions: every choice of three), at dilations spread exponentially up to the series length,
and pools each output into the proportion of values above a bias (PPV). Biases are quantiles of the
convolution of a random training case, so ``fit`` draws them; nothing else is learned but the head: a
ridge classifier whose penalty is chosen by leave-one-out cross-validation over ``logspace(-3, 3, 10)``
(as sklearn's ``RidgeClassifierCV``), then one temperature fitted on the leave-one-out decision values
so the logits give probabilities. Everything (dilations, biases, channel choices, the standardisation
and the head) is a buffer or a parameter of the module, so a bundle stores it in weights.safetensors
and the spec rebuilds the shapes.

Multivariate series follow MiniRocket's multivariate variant: each (dilation, kernel) pair sums its
convolution over a random subset of channels. Padded steps (mask 0) do not count in the pooling.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlpipe.core.errors import InvalidConfigError
from dlpipe.models.registry import register_model

__all__ = ["MiniRocket", "fit_dilations", "ridge_cv"]

_KERNEL_LENGTH = 9
_INDICES = torch.tensor(list(combinations(range(_KERNEL_LENGTH), 3)))  # (84, 3) the +2 positions
_INDICES_I32 = _INDICES.to(torch.int32).contiguous()
N_KERNELS = len(_INDICES)
_ALPHAS = np.logspace(-3, 3, 10)
_CHUNK_BUDGET = 2**23  # convolution outputs per chunk of series (~34 MB float32, x3 while sorting)


def _kernels() -> torch.Tensor:
    w = torch.full((N_KERNELS, _KERNEL_LENGTH), -1.0)
    w.scatter_(1, _INDICES, 2.0)
    return w  # (84, 9)


def fit_dilations(
    length: int, num_features: int, max_dilations: int = 32
) -> tuple[list[int], list[int]]:
    """MiniRocket's dilations for a series length and the features each dilation gets per kernel.

    Example:
        >>> fit_dilations(24, 10_000)
        ([1, 2], [79, 40])
    """
    per_kernel = max(1, num_features // N_KERNELS)
    true_max = min(per_kernel, max_dilations)
    multiplier = per_kernel / true_max
    max_exponent = math.log2(max(length - 1, 1) / (_KERNEL_LENGTH - 1))
    max_exponent = max(max_exponent, 0.0)
    grid = np.logspace(0, max_exponent, true_max, base=2).astype(np.int32)
    dilations, counts = np.unique(grid, return_counts=True)
    per_dilation = (counts * multiplier).astype(np.int32)
    remainder = per_kernel - int(per_dilation.sum())
    i = 0
    while remainder > 0:
        per_dilation[i] += 1
        remainder -= 1
        i = (i + 1) % len(per_dilation)
    return [int(d) for d in dilations], [int(c) for c in per_dilation]


def _quantiles(n: int) -> torch.Tensor:
    """The low-discrepancy quantile levels of MiniRocket: ``(i * golden ratio) % 1`` for i = 1..n."""
    i = np.arange(1, n + 1, dtype=np.float64)
    return torch.from_numpy((i * ((np.sqrt(5) + 1) / 2)) % 1).float()


class MiniRocket(nn.Module):
    """MiniRocket features (fixed) -> standardisation -> a linear head (fitted by :meth:`fit`).

    Args:
        spec: ``n_features`` (channels), ``length`` (steps of the training series), ``n_outputs``,
            ``num_features`` (defaults to `10_000`: 84 kernels x 119), ``max_dilations`` (defaults to `32`).

    Example:
        >>> m = MiniRocket({"n_features": 1, "length": 30, "n_outputs": 2, "num_features": 168})
        >>> x = torch.randn(8, 30, 1); y = torch.tensor([0, 1] * 4)
        >>> _ = m.fit(x, torch.ones(8, 30), y, seed=0)
        >>> m(x).shape
        torch.Size([8, 2])
    """

    weight: torch.Tensor  # buffers, saved in the state dict
    biases: torch.Tensor
    channel_mask: torch.Tensor
    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        errors = []
        for key in ("n_features", "length", "n_outputs"):
            value = spec.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                errors.append(f"`{key}` is {value!r} but must be a positive integer")
        num_features = spec.get("num_features", 10_000)
        if not isinstance(num_features, int) or num_features < N_KERNELS:
            errors.append(
                f"`num_features` is {num_features!r} but must be an integer of at least {N_KERNELS}"
            )
        max_dilations = spec.get("max_dilations", 32)
        if not isinstance(max_dilations, int) or max_dilations < 1:
            errors.append(f"`max_dilations` is {max_dilations!r} but must be a positive integer")
        if errors:
            raise InvalidConfigError(
                "the minirocket spec is invalid: " + "; ".join(errors) + "; fix the spec."
            )
        self.channels, self.length = int(spec["n_features"]), int(spec["length"])
        self.dilations, self.per_dilation = fit_dilations(
            self.length, int(num_features), int(max_dilations)
        )
        self.n_out_features = N_KERNELS * sum(self.per_dilation)
        n_d, f = len(self.dilations), self.n_out_features
        self.register_buffer("weight", _kernels()[:, None, :])  # (84, 1, 9)
        self.register_buffer("biases", torch.zeros(f))
        self.register_buffer("channel_mask", torch.ones(n_d, N_KERNELS, self.channels))
        self.register_buffer("mean", torch.zeros(f))
        self.register_buffer("scale", torch.ones(f))
        self.head = nn.Linear(f, int(spec["n_outputs"]))

    # ------------------------------------------------------------------ the transform
    def _conv(self, x: torch.Tensor, di: int) -> torch.Tensor:
        """(B, C, T) -> (B, 84, T): every kernel at dilation ``di``, zero-padded to the input length."""
        d = self.dilations[di]
        w = self.weight * self.channel_mask[di][:, :, None]  # (84, C, 9)
        return F.conv1d(x, w, padding=4 * d, dilation=d)

    def transform(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C) series (and a (B, T) mask) -> (B, num_features) PPV features."""
        x = x.float()
        if x.dim() == 2:
            x = x[:, :, None]
        b, t, _ = x.shape
        xc = x.transpose(1, 2)  # (B, T, C) -> (B, C, T) for conv1d
        valid = torch.ones(b, t, device=x.device) if mask is None else mask.float()
        chunk = max(1, _CHUNK_BUDGET // max(1, N_KERNELS * t))
        outs = []
        for lo in range(0, b, chunk):
            outs.append(self._transform_chunk(xc[lo : lo + chunk], valid[lo : lo + chunk]))
        return torch.cat(outs) if len(outs) > 1 else outs[0]

    def _transform_chunk(self, xc: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, t = valid.shape
        feats = []
        start = 0
        lib = _native(xc)
        mask_i = valid.gt(0).to(torch.int32).contiguous() if lib is not None else None
        fused = lib is not None and self.channels == 1  # one pass per series, no (B, 84, T) tensor
        x1 = xc[:, 0, :].contiguous() if fused else None
        work = torch.empty(11 * t) if fused else None
        for di, (d, n_f) in enumerate(zip(self.dilations, self.per_dilation)):
            pad = 4 * d
            bias = self.biases[start : start + N_KERNELS * n_f].view(N_KERNELS, n_f)
            start += N_KERNELS * n_f
            if fused and x1 is not None and work is not None and mask_i is not None:
                ppv = torch.empty(b, N_KERNELS, n_f)
                bias_c = bias.float().contiguous()  # the kernel reads float32
                status = lib.dlp_minirocket_features(
                    x1.data_ptr(), mask_i.data_ptr(), b, t, d, _INDICES_I32.data_ptr(), N_KERNELS,
                    bias_c.data_ptr(), n_f, di % 2, work.data_ptr(), ppv.data_ptr(),
                )  # fmt: skip
                if status:
                    raise RuntimeError("dlpipe's MiniRocket kernel refused its input")
                feats.append(ppv.reshape(b, N_KERNELS * n_f))
                continue
            conv = self._conv(xc, di).contiguous()  # (B, 84, T)
            if lib is not None and mask_i is not None:
                ppv = torch.empty(b, N_KERNELS, n_f)
                bias_c = bias.float().contiguous()  # the kernel reads float32
                status = lib.dlp_minirocket_ppv(
                    conv.data_ptr(), mask_i.data_ptr(), b, N_KERNELS, t,
                    bias_c.data_ptr(), n_f, pad, di % 2, ppv.data_ptr(),
                )  # fmt: skip
                if status:
                    raise RuntimeError("dlpipe's MiniRocket pooling kernel refused its input")
            else:
                ppv = _ppv_torch(conv, valid, bias, pad, di)
            feats.append(ppv.reshape(b, N_KERNELS * n_f))
        return torch.cat(feats, dim=1)

    def example_inputs(self) -> list[torch.Tensor]:
        """A 2-case batch for the layer table: series (2, length, channels) and their mask."""
        return [torch.zeros(2, self.length, self.channels), torch.ones(2, self.length)]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        z = (self.transform(x, mask) - self.mean) / self.scale
        return self.head(z)

    # ------------------------------------------------------------------ fitting
    @torch.no_grad()
    def fit(
        self,
        x: torch.Tensor,
        mask: torch.Tensor,
        y: torch.Tensor,
        *,
        seed: int = 0,
        binary: bool | None = None,
    ) -> dict[str, Any]:
        """Draw the biases (and channel subsets) from ``x``, then fit the ridge head and its temperature.

        Args:
            x: (N, T, C) training series. mask: (N, T), 1 = a real step. y: (N,) class codes
            (or (N, 1) 0/1 for a binary task with one output).
            seed: Seeds the random cases and channel subsets. binary: one output for two classes;
            defaults to ``n_outputs == 1``.

        Returns:
            ``alpha`` (the chosen penalty), ``temperature``, ``loo_accuracy`` and the training ``loss``.
        """
        gen = torch.Generator().manual_seed(int(seed))
        x = x.float()
        if x.dim() == 2:
            x = x[:, :, None]
        mask = mask.float()
        self._fit_channels(gen)
        self._fit_biases(x.transpose(1, 2), mask, gen)
        # The ridge fit runs on the CPU in float64 whatever the device (MPS has no float64; N x N is small)
        feats = self.transform(x, mask).cpu().double()  # (N, F)
        codes = y.reshape(-1).long().cpu()
        one_output = self.head.out_features == 1 if binary is None else binary
        n_classes = 2 if one_output else self.head.out_features
        targets = -torch.ones(len(codes), n_classes, dtype=torch.float64)
        targets[torch.arange(len(codes)), codes] = 1.0
        if one_output:
            targets = targets[:, 1:]  # +1 for class 1, -1 for class 0
        mean = feats.mean(0)
        scale = feats.std(0, unbiased=False)
        scale = torch.where(scale > 1e-8, scale, torch.ones_like(scale))
        z = (feats - mean) / scale
        coef, intercept, alpha, loo = ridge_cv(z, targets)
        temperature = _fit_temperature(loo, codes, one_output)
        self.mean.copy_(mean.float())
        self.scale.copy_(scale.float())
        self.head.weight.copy_((coef.T * temperature).float())
        self.head.bias.copy_((intercept * temperature).float())
        logits = (z @ coef + intercept) * temperature
        loss = _log_loss(logits, codes, one_output)
        loo_pred = (loo[:, 0] > 0).long() if one_output else loo.argmax(1)
        return {
            "alpha": float(alpha),
            "temperature": float(temperature),
            "loo_accuracy": float((loo_pred == codes).double().mean()),
            "loss": float(loss),
        }

    def _fit_channels(self, gen: torch.Generator) -> None:
        c = self.channels
        if c == 1:
            return
        n_comb = len(self.dilations) * N_KERNELS
        top = math.log2(min(c, 9) + 1)
        sizes = (2 ** (torch.rand(n_comb, generator=gen, dtype=torch.float64) * top)).long()
        mask = torch.zeros(n_comb, c)
        for i, k in enumerate(sizes.clamp(1, c).tolist()):
            mask[i, torch.randperm(c, generator=gen)[:k]] = 1.0
        self.channel_mask.copy_(mask.view(len(self.dilations), N_KERNELS, c))

    def _fit_biases(self, xc: torch.Tensor, mask: torch.Tensor, gen: torch.Generator) -> None:
        """Each (dilation, kernel) pair: quantiles of its convolution of one random training case."""
        n, c, t = xc.shape
        levels = _quantiles(self.n_out_features).to(xc.device)
        start = 0
        for di, n_f in enumerate(self.per_dilation):
            d = self.dilations[di]
            pick = torch.randint(n, (N_KERNELS,), generator=gen).to(xc.device)
            cases = xc[pick].reshape(1, N_KERNELS * c, t)  # kernel k sees case pick[k]
            w = self.weight * self.channel_mask[di][:, :, None]  # (84, C, 9)
            conv = F.conv1d(cases, w, padding=4 * d, dilation=d, groups=N_KERNELS)[0]  # (84, T)
            real = mask[pick] > 0  # (84, T)
            count = real.sum(1).clamp_min(1)  # (84,)
            ordered = torch.where(real, conv, torch.full_like(conv, float("inf"))).sort(1).values
            q = levels[start : start + N_KERNELS * n_f].view(N_KERNELS, n_f).double()
            pos = q * (count[:, None] - 1).double()  # numpy's linear interpolation
            lo = pos.floor().long()
            hi = pos.ceil().long()
            frac = (pos - lo).float()
            v_lo, v_hi = ordered.gather(1, lo), ordered.gather(1, hi)
            self.biases[start : start + N_KERNELS * n_f] = (v_lo + (v_hi - v_lo) * frac).reshape(-1)
            start += N_KERNELS * n_f


def _native(x: torch.Tensor) -> Any:
    """The compiled pooling kernel when it applies (float32 on the CPU, eager), else None."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or torch.jit.is_tracing():
        return None
    if torch.compiler.is_compiling():
        return None
    from dlpipe.models.native import load_minirocket

    return load_minirocket()


def _ppv_torch(
    conv: torch.Tensor, valid: torch.Tensor, bias: torch.Tensor, pad: int, di: int
) -> torch.Tensor:
    """(B, 84, T) convolutions, (B, T) mask, (84, n_f) biases -> (B, 84, n_f) PPV with torch's kernels."""
    b, k, t = conv.shape
    steps = torch.arange(t, device=conv.device)
    parity = torch.arange(k, device=conv.device)
    # Kernels of odd (dilation index + kernel index) pool only where no padding entered the
    # convolution, as in MiniRocket; the others pool over every step.
    inner = ((steps >= pad) & (steps < t - pad)).float()  # (T,)
    odd = ((parity + di) % 2 == 1)[:, None]  # (84, 1)
    region = torch.where(odd, inner[None, :], torch.ones_like(inner)[None, :])  # (84, T)
    keep = (region[None] * valid[:, None, :]) > 0  # (B, 84, T) steps that are pooled
    count = keep.sum(-1).clamp_min(1)  # (B, 84)
    pooled = torch.where(keep, conv, torch.full_like(conv, float("-inf")))  # left out: never above
    # (B, 84, 1, T) > (1, 84, n_f, 1), counted over the contiguous last axis as bytes (measured 3x
    # faster than sorting each row and searching it, and than a float sum)
    above = torch.gt(pooled[:, :, None, :], bias[None, :, :, None]).to(torch.uint8)
    hits = above.sum(-1, dtype=torch.int32)  # (B, 84, n_f)
    return hits.to(conv.dtype) / count[..., None].to(conv.dtype)


def ridge_cv(
    z: torch.Tensor, y: torch.Tensor, alphas: np.ndarray = _ALPHAS
) -> tuple[torch.Tensor, torch.Tensor, float, torch.Tensor]:
    """Ridge regression of ``y`` (N, K) on standardised ``z`` (N, F) with the penalty chosen by leave-one-out.

    The intercept is not penalised (data centred). Leave-one-out residuals come in closed form from one
    eigendecomposition (of the N x N Gram matrix when N <= F, else of the F x F covariance), as in
    sklearn's ``_RidgeGCV``. Returns ``(coef (F, K), intercept (K,), alpha, loo decision values (N, K))``.
    """
    n, f = z.shape
    z_mean = z.mean(0)
    y_mean = y.mean(0)
    zc, yc = z - z_mean, y - y_mean
    best: tuple[float, float, torch.Tensor, torch.Tensor] | None = None
    if n <= f:
        v, q = torch.linalg.eigh(zc @ zc.T)  # (N,), (N, N)
        # centring leaves the constant direction with eigenvalue 0: it is the intercept's, unpenalised
        const = q.T @ torch.full((n,), 1 / math.sqrt(n), dtype=z.dtype, device=z.device)
        const = const.abs().argmax()
        qty = q.T @ yc
        for alpha in alphas:
            w = 1.0 / (v + alpha)
            w[const] = 0.0
            c = q @ (w[:, None] * qty)  # (N, K) dual coefficients
            g_diag = (q**2) @ w  # (N,) diagonal of (K + alpha I)^-1 without the intercept direction
            resid = c / g_diag[:, None]
            err = float((resid**2).sum())
            if best is None or err < best[0]:
                best = (err, float(alpha), c, y - resid)
        assert best is not None
        _, alpha, c, loo = best
        coef = zc.T @ c
    else:
        v, vec = torch.linalg.eigh(zc.T @ zc)  # (F,), (F, F)
        proj = zc @ vec  # (N, F)
        pty = proj.T @ yc
        for alpha in alphas:
            w = 1.0 / (v + alpha)
            fitted = proj @ (w[:, None] * pty)
            hat = (proj**2) @ w + 1.0 / n  # leverage, the intercept's 1/N included
            resid = (yc - fitted) / (1.0 - hat)[:, None]
            err = float((resid**2).sum())
            if best is None or err < best[0]:
                best = (err, float(alpha), w, y - resid)
        assert best is not None
        _, alpha, w, loo = best
        coef = vec @ (w[:, None] * pty)
    intercept = y_mean - z_mean @ coef
    return coef, intercept, alpha, loo


def _log_loss(logits: torch.Tensor, codes: torch.Tensor, one_output: bool) -> torch.Tensor:
    if one_output:
        return F.binary_cross_entropy_with_logits(logits[:, 0], codes.to(logits.dtype))
    return F.cross_entropy(logits, codes)


def _fit_temperature(decision: torch.Tensor, codes: torch.Tensor, one_output: bool) -> float:
    """The scale of the ridge decision values that minimises the log loss of the leave-one-out ones."""
    grid = torch.logspace(-1, 1.5, 51, dtype=torch.float64, device=decision.device)
    losses = torch.stack([_log_loss(decision * t, codes, one_output) for t in grid])
    return float(grid[int(losses.argmin())])


@register_model("minirocket")
def _build(spec: dict[str, Any]) -> nn.Module:
    return MiniRocket(spec)
