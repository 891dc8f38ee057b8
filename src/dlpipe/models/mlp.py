"""The multilayer perceptron for tables, with embeddings for high-cardinality categoricals.

Its optional first layer (``numeric_input="robust_clip"``) is RealMLP-TD's input treatment
(Holzmüller et al. 2024): numeric columns robust-scaled with statistics fitted on the training rows
(stored as buffers, so they travel in ``weights.safetensors``), smoothly clipped to about ±3, then
multiplied by a learnable per-feature scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "MLP",
    "ACTIVATIONS",
    "MEMBER_AVERAGES",
    "NumericInput",
    "default_hidden",
    "default_bins",
    "column_bins",
    "default_members",
    "default_skip",
    "average_members",
]

# How an ensemble's members are averaged into one output: probabilities for classification (the
# result is returned as logits again), values for regression.
MEMBER_AVERAGES = ("mean", "sigmoid", "softmax")


def average_members(out: torch.Tensor, how: str) -> torch.Tensor:
    """Average member outputs ``(k, B, C)`` to ``(B, C)`` logits.

    ``"mean"`` averages values (regression); ``"sigmoid"`` averages probabilities and returns their
    logit; ``"softmax"`` averages class probabilities and returns their log (softmax of the result
    gives the averaged probabilities back).
    """
    k = out.shape[0]
    if how == "sigmoid":
        p = torch.sigmoid(out).mean(dim=0).clamp(1e-7, 1.0 - 1e-7)
        return torch.log(p) - torch.log1p(-p)
    if how == "softmax":
        return torch.logsumexp(torch.log_softmax(out, dim=-1), dim=0) - torch.log(
            torch.tensor(float(k), dtype=out.dtype, device=out.device)
        )
    return out.mean(dim=0)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}


def default_hidden(n_rows: int) -> list[int]:
    """A size that fits the data: small tables get a small network (less to overfit).

    RealMLP-TD's 3 x 256 for every size was measured against this rule in issue #17
    (benchmarks/RESULTS.md) and not made the default.
    """
    if n_rows < 2_000:
        return [64, 32]
    if n_rows < 20_000:
        return [128, 64]
    return [256, 128]


def default_members(n_rows: int, task: str = "binary") -> int:
    """Ensemble members of the default table MLP: TabM's 32 on small tables, 8 from 2,000 rows.

    Each member costs about one MLP's arithmetic per row, so the count falls with the rows to keep
    a default run on 10,000 x 100 under a minute: with 16 members it took 72-83 s under load 6.5-7
    (40 s CPU), with 8 members 38 s (25 s CPU); on the development table in that range (fair,
    4,074 training rows) 8 members scored ROC-AUC 0.7267 against 16 members' 0.7272 (issue #17,
    docs/tables.md). Regression: 8. With the refit on train + validation rows, no dropout and the
    linear skip path, 8 members lowered the development RMSE of friedman1 (0.679 -> 0.236) and star98
    (0.0842 -> 0.0823), grunfeld rose (37.8 -> 39.2); 16 and 32 members did better on friedman1 but
    worse on grunfeld (42.2, 44.6). From 2,000 rows, with 8 piecewise-linear intervals
    (:func:`default_bins`), 8 members lowered flights' RMSE (2.77 -> 2.67) and were level on randhie
    (4.011 -> 4.013); without the encodings they were worse on randhie (4.018 vs 4.004; issue #17,
    docs/tables.md), so until 2026-12-07 regression from 2,000 rows was a plain MLP.
    """
    if task == "regression":
        return 8
    if n_rows < 2_000:
        return 32
    return 8


def default_skip(n_rows: int, task: str = "binary") -> bool:
    """Whether the default table MLP adds a linear input-to-output path (``MLP(skip=True)``).

    Regression below 2,000 training rows: chosen on development tables (issue #17, docs/tables.md),
    where it lowered the RMSE on every seed of friedman1, star98 and grunfeld (with the refit on
    train + validation rows: 0.770 -> 0.679, 0.0851 -> 0.0842, 41.8 -> 37.8) and raised it on randhie
    (6,400 training rows: 4.004 -> 4.012). Classification keeps none: mixed on the development tables
    (better on iris and fair, worse on hastie and anes96).
    """
    return task == "regression" and n_rows < 2_000


# the widest input the default encodings make: 32 columns x (1 + 16 intervals), the most the
# classification rule of default_bins gives (its cost measured: docs/tables.md)
WIDE_BINS_WIDTH = 32 * 17


def default_bins(n_rows: int, task: str = "binary", n_numeric: int = 0) -> int:
    """Piecewise-linear numeric encodings of the default table MLP: 16 intervals from 2,000 rows, else 0;
    regression up to 32.

    From 2,000 training rows the default model puts a :class:`NumericInput` (robust scaling, smooth
    clipping, a learnable scale) with ``bins`` piecewise-linear intervals over training quantiles
    before the dense stack. Chosen on development tables (issue #17, docs/tables.md): from 2,000 rows
    8 intervals helped where trees lead (flights RMSE 3.41 -> 2.67 with 8 regression members, churn
    ROC-AUC 0.896 -> 0.926, fair 0.728 -> 0.733) and were level on randhie (4.004 -> 4.013); 16 did
    better on flights (2.37) and were level elsewhere (randhie 4.013, churn 0.928, fair 0.733); 32
    better still on flights (2.25) at twice the width. Below 2,000 rows 8 intervals were mixed (better
    on iris and hmda, worse on hastie, anes96 and mnist8), so small tables keep none. The encodings
    widen the first layer (1 + bins)-fold and move training off the engine's fast path: on 10,000 x 100
    the default run took 137 s with 8 under load 4-6 (12.7 s without them at load 2.8), so a numeric
    block wider than 32 columns (one-hot columns included) keeps none.

    Regression gets the most intervals, up to 32, that keep the encoded width ``F * (1 + bins)``
    within the widest the 16-interval rule makes (32 x 17 = 544 inputs), so never fewer than 16:
    32 for up to 16 columns, 31 for flights' 17, 19 for diamonds' 26. Chosen on development tables
    (seeds 0-2, issue #17, docs/tables.md): RMSE flights 2.368 -> 2.213 (31 intervals), randhie
    4.013 -> 4.008 (32), diamonds 693.2 -> 687.4 (19; 690.7 with 32); it costs up to 1.3x the
    seconds (10,000 x 16: 47.9 s vs 36.6 s). Classification stays at 16 (churn and fair were level
    between 8 and 16; more not tried). Wide blocks: see ``TABLE_MODEL_DEFAULTS["wide_bins"]``.
    """
    if n_rows < 2_000 or n_numeric > 32:
        return 0
    if task == "regression":
        return min(32, max(16, WIDE_BINS_WIDTH // max(n_numeric, 1) - 1))
    return 16


def column_bins(
    distinct: Sequence[int], most: int = 16, width: int = WIDE_BINS_WIDTH, fewest: int = 2
) -> list[int]:
    """Per-column piecewise-linear intervals for a wide numeric block, from each column's distinct values.

    A column with ``d`` distinct training values gets ``min(most, d - 1)`` intervals (a column of at
    most ``most + 1`` values: one between each pair of neighbours), a column of at most ``fewest``
    values none (a 0/1 column's value says it all). While the encoded width ``F + sum`` exceeds
    ``width``, ``most`` falls by one, so the columns with the most values lose intervals first; all
    zeros if even one interval each is too wide.
    """
    for cap in range(most, 0, -1):
        counts = [min(cap, d - 1) if d > fewest else 0 for d in distinct]
        if len(counts) + sum(counts) <= width:
            return counts
    return [0] * len(distinct)


def embedding_dim(cardinality: int) -> int:
    """fast.ai's rule of thumb, capped: min(50, round(1.6 * K ** 0.56))."""
    return int(min(50, max(2, round(1.6 * cardinality**0.56))))


class NumericInput(nn.Module):
    """Robust scaling, smooth clipping ``z / sqrt(1 + (z / 3) ** 2)`` and a learnable per-feature scale.

    ``center`` and ``inv_scale`` are buffers set by :meth:`fit` from the training rows (median and
    1 / interquartile range; 2 / range for a column whose quartiles coincide, such as a rare one-hot
    column; 1 for a constant one); they are saved with the weights.

    With ``bins > 0`` each clipped value is also encoded piecewise-linearly (Gorishniy et al. 2022)
    over ``bins`` intervals between training quantiles: (B, F) -> (B, F * (1 + bins)). ``bins`` may
    also give one count per column (see :func:`column_bins`): a column with at most ``count + 1``
    distinct training values then gets one interval between each pair of neighbouring values, the
    others quantile intervals; (B, F) -> (B, F + sum of the counts).

    Args:
        n_features: Number of numeric input columns.
        bins: Piecewise-linear intervals per column (0: none), one count or one per column.
            Defaults to `0`.

    Example:
        >>> layer = NumericInput(3).fit(torch.randn(100, 3))
        >>> layer(torch.zeros(4, 3)).shape
        torch.Size([4, 3])
    """

    center: torch.Tensor
    inv_scale: torch.Tensor
    edges: torch.Tensor
    keep: torch.Tensor

    def __init__(self, n_features: int, bins: int | Sequence[int] = 0) -> None:
        super().__init__()
        # per-column interval counts; ``bins`` (the widest) sizes the (F, bins + 1) edges buffer
        self.per_column = not isinstance(bins, int)
        self.counts = [bins] * n_features if isinstance(bins, int) else [int(b) for b in bins]
        if len(self.counts) != n_features or min(self.counts, default=0) < 0:
            raise ValueError(
                f"`bins` is {bins!r} but must be a count >= 0 or one per numeric column ({n_features})."
            )
        self.bins = max(self.counts, default=0)
        self.register_buffer("center", torch.zeros(n_features))
        self.register_buffer("inv_scale", torch.ones(n_features))
        # (F, bins + 1) interval edges of the clipped values; evenly spaced until fitted
        self.register_buffer(
            "edges", torch.linspace(-3.0, 3.0, self.bins + 1).repeat(n_features, 1)
        )
        # with per-column counts, the flat positions of the intervals kept (from the spec: not saved)
        keep = [j * self.bins + i for j, b in enumerate(self.counts) for i in range(b)]
        self.register_buffer("keep", torch.tensor(keep, dtype=torch.long), persistent=False)
        self.weight = nn.Parameter(torch.ones(n_features))

    @property
    def out_features(self) -> int:
        return len(self.counts) + sum(self.counts)

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> NumericInput:
        """Set the statistics from training rows ``x`` (N, F)."""
        x = x.float()
        if x.shape[0] == 0:
            return self
        q = torch.quantile(x, torch.tensor([0.25, 0.5, 0.75]), dim=0)  # (3, F)
        iqr = q[2] - q[0]
        spread = x.amax(dim=0) - x.amin(dim=0)
        inv = torch.where(iqr > 1e-9, 1.0 / iqr.clamp_min(1e-9), 2.0 / spread.clamp_min(1e-9))
        self.center.copy_(q[1])
        self.inv_scale.copy_(torch.where(spread > 1e-9, inv, torch.ones_like(inv)))
        if self.bins:
            z = self._clipped(x)
            levels = torch.linspace(0.0, 1.0, self.bins + 1)
            self.edges.copy_(torch.quantile(z, levels, dim=0).T)  # (F, bins + 1)
            for j, b in enumerate(self.counts if self.per_column else ()):
                values = torch.unique(z[:, j])
                if len(values) <= b + 1:  # a few values: one interval between neighbours
                    edges = values
                else:
                    edges = torch.quantile(z[:, j], torch.linspace(0.0, 1.0, b + 1))
                self.edges[j, : len(edges)] = edges
                self.edges[j, len(edges) :] = edges[-1]  # unused (``keep`` drops them)
        return self

    def _clipped(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.center) * self.inv_scale  # (B, F)
        return z * torch.rsqrt(1.0 + (z / 3.0) ** 2)  # smooth clip to (-3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self._clipped(x)
        if not self.bins:
            return z * self.weight
        lo, width = self.edges[:, :-1], (self.edges[:, 1:] - self.edges[:, :-1]).clamp_min(1e-6)
        ple = ((z.unsqueeze(-1) - lo) / width).clamp(0.0, 1.0).flatten(1)  # (B, F * bins)
        if len(self.keep) < ple.shape[1]:
            ple = ple.index_select(1, self.keep)  # (B, sum of the columns' counts)
        return torch.cat([z * self.weight, ple], dim=1)  # (B, F + intervals)


class MemberInput(nn.Module):
    """(B, F) -> (k, B, F): each member's copy of the input times its fixed random signs (TabM-mini).

    The signs are a buffer drawn at construction (saved with the weights, not trained).
    """

    signs: torch.Tensor

    def __init__(self, members: int, n_features: int) -> None:
        super().__init__()
        signs = torch.randint(0, 2, (members, 1, n_features)).float().mul_(2).sub_(1)
        self.register_buffer("signs", signs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(0) * self.signs


class MemberHeads(nn.Module):
    """(k, B, H) -> (k, B, C): one output layer per member (a batched matmul)."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / in_features**0.5  # nn.Linear's default range
        self.weight = nn.Parameter(
            torch.empty(members, in_features, out_features).uniform_(-bound, bound)
        )
        self.bias = nn.Parameter(torch.empty(members, 1, out_features).uniform_(-bound, bound))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, h, self.weight)


class MemberAverage(nn.Module):
    """(k, B, C) -> (B, C): the members' average as logits (see :func:`average_members`)."""

    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def forward(self, out: torch.Tensor) -> torch.Tensor:
        return average_members(out, self.how)


class MLP(nn.Module):
    """Dense layers [Linear -> (BatchNorm) -> activation -> (Dropout)] x len(hidden) -> Linear(n_outputs).

    Args:
        n_numeric: Width of the numeric input block.
        n_outputs: Width of the output layer (logits).
        hidden: Hidden layer sizes. Defaults to `(64, 32)`.
        activation: One of ``ACTIVATIONS``. Defaults to `"relu"`.
        dropout: Dropout after each hidden layer. Defaults to `0.0`.
        batch_norm: Batch normalisation before each activation. Defaults to `False`.
        cardinalities: Embedding table sizes for the categorical codes. Defaults to `()`.
        embedding_dims: Embedding widths (one per table). Defaults to a rule of thumb.
        numeric_input: ``"robust_clip"`` puts a :class:`NumericInput` before the dense stack (its
            statistics set by ``model.numeric_input.fit(x_train)``); ``"none"`` feeds the numeric
            block as it comes. Defaults to `"none"`.
        bins: Piecewise-linear encoding intervals of the numeric input layer, one count or one per
            numeric column (:class:`NumericInput`). Defaults to `0`.
        members: Ensemble members sharing the hidden layers (TabM-mini, Gorishniy et al. 2025):
            each member multiplies the input by its own fixed random signs and has its own output
            layer. In training mode the forward returns every member's output ``(members, B,
            n_outputs)`` (each member is trained on its own loss); in eval mode their average.
            ``1`` is a plain MLP. Defaults to `1`.
        average: How members are averaged in eval mode: ``"mean"`` (regression), ``"sigmoid"``
            (binary logits) or ``"softmax"`` (class logits). Defaults to `"mean"`.
        skip: A linear path from the input to the output beside the hidden layers (wide & deep,
            Cheng et al. 2016): the output adds ``Linear(input, n_outputs)`` of the input, shared by
            every member and initialised at zero. Defaults to `False`.

    Example:
        >>> m = MLP(20, 1, hidden=(64, 32))
        >>> m(torch.zeros(5, 20)).shape
        torch.Size([5, 1])
    """

    def __init__(
        self,
        n_numeric: int,
        n_outputs: int,
        hidden: tuple[int, ...] | list[int] = (64, 32),
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        cardinalities: tuple[int, ...] | list[int] = (),
        embedding_dims: tuple[int, ...] | list[int] | None = None,
        numeric_input: str = "none",
        bins: int | Sequence[int] = 0,
        members: int = 1,
        average: str = "mean",
        skip: bool = False,
    ) -> None:
        super().__init__()
        self.members, self.average = int(members), average
        if numeric_input not in ("none", "robust_clip"):
            raise ValueError(
                f"`numeric_input` is {numeric_input!r} but must be 'none' or 'robust_clip'; pass one of them."
            )
        self.numeric_input = (
            NumericInput(n_numeric, bins=bins) if numeric_input == "robust_clip" else None
        )
        dims = (
            list(embedding_dims)
            if embedding_dims is not None
            else [embedding_dim(k) for k in cardinalities]
        )
        self.embeddings = nn.ModuleList(nn.Embedding(k, d) for k, d in zip(cardinalities, dims))
        in_width = (self.numeric_input.out_features if self.numeric_input else n_numeric) + sum(
            dims
        )
        width = in_width
        layers: list[nn.Module] = []
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        if self.members == 1:
            layers.append(nn.Linear(width, n_outputs))
        else:
            self.member_input = MemberInput(self.members, in_width)
            self.head = MemberHeads(self.members, width, n_outputs)
            self.member_average = MemberAverage(average)
        self.body = nn.Sequential(*layers)
        # zero at the start, so the network begins as the plain stack and the linear part is learned
        self.skip = nn.Linear(in_width, n_outputs) if skip else None
        if self.skip is not None:
            nn.init.zeros_(self.skip.weight)
            nn.init.zeros_(self.skip.bias)

    def fast_path_layers(self) -> nn.Sequential | None:
        """The dense stack, when forward is nothing but it (and the members' heads): the engine's fast path."""
        plain = not len(self.embeddings) and self.numeric_input is None
        return self.body if plain else None

    def fast_path_skip(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``(weight (C, F), bias (C,))`` of the linear input-to-output path, else None."""
        if self.skip is None:
            return None
        return self.skip.weight, self.skip.bias

    def fast_path_members(self) -> tuple[torch.Tensor, nn.Parameter, nn.Parameter] | None:
        """``(signs (k, 1, F), head weight (k, H, C), head bias (k, 1, C))`` of an ensemble, else None."""
        if self.members == 1:
            return None
        return self.member_input.signs, self.head.weight, self.head.bias

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor | None = None) -> torch.Tensor:
        if self.numeric_input is not None:
            x_num = self.numeric_input(x_num)
        if x_cat is not None and len(self.embeddings):
            # (B, F) + C x (B, d_c) -> (B, F + sum d_c)
            x_num = torch.cat(
                [x_num, *(emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings))], dim=1
            )
        if self.members == 1:
            out = self.body(x_num)
            return out if self.skip is None else out + self.skip(x_num)
        h = self.member_input(x_num)  # (k, B, F)
        k, b = h.shape[:2]
        h = self.body(h.reshape(k * b, h.shape[-1]))  # the shared hidden layers (0 rows too)
        h = h.reshape(k, b, h.shape[-1])
        out = self.head(h)  # (k, B, n_outputs)
        if self.skip is not None:
            out = out + self.skip(
                x_num
            )  # (k, B, C) + (B, C): every member adds the same linear part
        return out if self.training else self.member_average(out)
