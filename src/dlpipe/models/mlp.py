"""The multilayer perceptron for tables, with embeddings for high-cardinality categoricals."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLP", "ACTIVATIONS", "default_hidden"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "silu": nn.SiLU,
}


def default_hidden(n_rows: int) -> list[int]:
    """A size that fits the data: small tables get a small network (less to overfit)."""
    if n_rows < 2_000:
        return [64, 32]
    if n_rows < 20_000:
        return [128, 64]
    return [256, 128]


def embedding_dim(cardinality: int) -> int:
    """fast.ai's rule of thumb, capped: min(50, round(1.6 * K ** 0.56))."""
    return int(min(50, max(2, round(1.6 * cardinality**0.56))))


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
    ) -> None:
        super().__init__()
        dims = (
            list(embedding_dims)
            if embedding_dims is not None
            else [embedding_dim(k) for k in cardinalities]
        )
        self.embeddings = nn.ModuleList(nn.Embedding(k, d) for k, d in zip(cardinalities, dims))
        width = n_numeric + sum(dims)
        layers: list[nn.Module] = []
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = size
        layers.append(nn.Linear(width, n_outputs))
        self.body = nn.Sequential(*layers)

    def fast_path_layers(self) -> nn.Sequential | None:
        """The dense stack, when forward is nothing but it (no embeddings): the engine's fast path."""
        return None if len(self.embeddings) else self.body

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor | None = None) -> torch.Tensor:
        if x_cat is not None and len(self.embeddings):
            # (B, F) + C x (B, d_c) -> (B, F + sum d_c)
            x_num = torch.cat(
                [x_num, *(emb(x_cat[:, i]) for i, emb in enumerate(self.embeddings))], dim=1
            )
        return self.body(x_num)
