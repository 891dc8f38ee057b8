"""Text classifiers over token ids (N, T) int64, 0 = padding: registered families.

- ``text_bag``: fastText-style bag of embeddings (Joulin et al. 2017): word embeddings and hashed
  word-bigram embeddings averaged in one ``EmbeddingBag`` (optionally weighted by the words' IDF from
  the training split), then an optional hidden layer and a linear layer.
- ``text_rnn``: embeddings -> a (bi)GRU or LSTM -> mean and max over the real tokens -> linear.
- ``text_transformer``: embeddings + learned positions -> a small Transformer encoder -> masked mean -> linear.
- ``text_vectors``: fixed input vectors (a pretrained encoder's sentence embeddings, computed
  outside) -> linear (or one hidden layer); what the pretrained option trains on.
- ``text_tabular``: any of the above as a text branch (its document vector), joined with table
  columns (the table preprocessor's ``x_num`` and ``x_cat``) before the output layer.

Every family reads its padding from id 0, so a batch may be padded to any width.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError
from dlpipe.models.registry import register_model

__all__ = ["TextBag", "TextRNN", "TextTransformer", "TextVectors", "TextTabular", "BIGRAM_PRIME"]

BIGRAM_PRIME = 1_000_003  # bigram (a, b) -> (a * P + b) mod buckets: the hashing trick


def _table(rows: int, dim: int, *, pad: bool = True) -> torch.Tensor:
    """An embedding table drawn U(-1/dim, 1/dim) with row 0 (padding) zero. Built here rather than by
    ``nn.Embedding``'s own init: on the "meta" device (the registry's memory check) torch's random
    init imports its compiler stack (~20 s measured on a busy machine); an empty meta tensor costs nothing."""
    weight = torch.empty(rows, dim)
    if weight.device.type != "meta":
        with torch.no_grad():
            weight.uniform_(-1.0 / dim, 1.0 / dim)
            if pad:
                weight[0].zero_()
    return weight


def _check(spec: dict[str, Any], keys: tuple[str, ...]) -> None:
    bad = [k for k in keys if not isinstance(spec.get(k), int) or spec[k] < 1]
    if bad:
        raise InvalidConfigError(
            f"model spec of family {spec.get('family')!r} needs positive integers for {', '.join(f'`{k}`' for k in bad)}; "
            f"got {', '.join(repr(spec.get(k)) for k in bad)}."
        )


class TextBag(nn.Module):
    """fastText-style classifier: mean of word and hashed-bigram embeddings -> (hidden) -> logits.

    Args:
        vocab_size: Words in the vocabulary (id 0 is padding).
        n_outputs: Logits.
        dim: Embedding width. Defaults to `100`.
        buckets: Hashed bigram rows (0: words only). Defaults to `200_000`.
        hidden: One hidden layer's width (0: linear, as fastText). Defaults to `0`.
        dropout: On the averaged embedding. Defaults to `0.0`.
        idf: Weight each word (and bigram) by the word's IDF; the IDF values are a buffer filled by the recipe.
            Defaults to `False`.

    Example:
        >>> m = TextBag(10, 3, dim=4, buckets=5)
        >>> m(torch.tensor([[2, 3, 0], [4, 0, 0]])).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        vocab_size: int,
        n_outputs: int,
        *,
        dim: int = 100,
        buckets: int = 200_000,
        hidden: int = 0,
        dropout: float = 0.0,
        idf: bool = False,
    ) -> None:
        super().__init__()
        self.vocab_size, self.buckets, self.use_idf = vocab_size, buckets, idf
        self.feature_dim = dim
        self.embed = nn.EmbeddingBag(
            vocab_size + buckets,
            dim,
            mode="sum",
            padding_idx=0,
            _weight=_table(vocab_size + buckets, dim),
        )
        self.idf: torch.Tensor
        self.register_buffer("idf", torch.ones(vocab_size))
        self.drop = nn.Dropout(dropout)
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden or dim, n_outputs))
        self.head = nn.Sequential(*layers)

    def bag(self, ids: torch.Tensor) -> torch.Tensor:
        """The document vectors (B, dim)."""
        real = ids != 0  # (B, T)
        w = self.idf[ids] * real if self.use_idf else real.float()  # (B, T)
        tokens = ids
        if self.buckets and ids.shape[1] > 1:
            a, b = ids[:, :-1], ids[:, 1:]
            pair = real[:, :-1] & real[:, 1:]  # (B, T-1)
            bi = torch.where(pair, (a * BIGRAM_PRIME + b) % self.buckets + self.vocab_size, 0)
            tokens = torch.cat([ids, bi], dim=1)  # (B, 2T-1)
            w = torch.cat([w, torch.minimum(w[:, :-1], w[:, 1:]) * pair], dim=1)
        w = w / w.sum(dim=1, keepdim=True).clamp_min(1e-6)  # a weighted mean over the real tokens
        # Only the real tokens go into the bag (padding costs nothing): flat ids + per-document offsets.
        keep = tokens != 0
        counts = keep.sum(dim=1)  # (B,)
        offsets = torch.cumsum(counts, 0) - counts
        return self.embed(tokens[keep], offsets, per_sample_weights=w[keep])  # type: ignore[no-any-return]

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """The document vector before the head (B, dim): what a text branch beside table columns gives."""
        return self.drop(self.bag(ids))  # type: ignore[no-any-return]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(ids))  # type: ignore[no-any-return]


def _masked_pool(h: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean and max over the real steps: (B, T, H), (B, T) -> (B, 2H)."""
    m = real.unsqueeze(-1).to(h.dtype)
    mean = (h * m).sum(1) / m.sum(1).clamp_min(1.0)
    mx = h.masked_fill(~real.unsqueeze(-1), -1e4).amax(1)
    return torch.cat([mean, mx], dim=1)


class TextRNN(nn.Module):
    """Embeddings -> (bi)GRU/LSTM -> masked mean+max pooling -> logits.

    Example:
        >>> m = TextRNN(10, 3, dim=4, hidden=5)
        >>> m(torch.tensor([[2, 3, 0], [4, 0, 0]])).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        vocab_size: int,
        n_outputs: int,
        *,
        dim: int = 100,
        hidden: int = 128,
        cell: str = "gru",
        bidirectional: bool = True,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if cell not in ("gru", "lstm"):
            raise InvalidConfigError(f"`cell` is {cell!r} but must be 'gru' or 'lstm'.")
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0, _weight=_table(vocab_size, dim))
        rnn = nn.GRU if cell == "gru" else nn.LSTM
        self.rnn = rnn(dim, hidden, batch_first=True, bidirectional=bidirectional)
        self.drop = nn.Dropout(dropout)
        self.feature_dim = 2 * hidden * (2 if bidirectional else 1)
        self.out = nn.Linear(self.feature_dim, n_outputs)

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        real = ids != 0  # (B, T)
        h, _ = self.rnn(self.drop(self.embed(ids)))  # (B, T, H*dirs)
        return self.drop(_masked_pool(h, real))  # type: ignore[no-any-return]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(ids))  # type: ignore[no-any-return]


class TextTransformer(nn.Module):
    """Embeddings + learned positions -> a small pre-norm Transformer encoder -> masked mean -> logits.

    Example:
        >>> m = TextTransformer(10, 3, dim=8, heads=2, layers=1, max_length=4)
        >>> m(torch.tensor([[2, 3, 0], [4, 0, 0]])).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        vocab_size: int,
        n_outputs: int,
        *,
        dim: int = 128,
        heads: int = 4,
        layers: int = 2,
        max_length: int = 512,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise InvalidConfigError(f"`dim` ({dim}) must be a multiple of `heads` ({heads}).")
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0, _weight=_table(vocab_size, dim))
        self.pos = nn.Embedding(max_length, dim, _weight=_table(max_length, dim, pad=False))
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True, activation="gelu"
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.feature_dim = dim
        self.out = nn.Linear(dim, n_outputs)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(ids))  # type: ignore[no-any-return]

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids[:, : self.pos.num_embeddings]
        real = ids != 0  # (B, T)
        positions = torch.arange(ids.shape[1], device=ids.device)
        h = self.embed(ids) + self.pos(positions)  # (B, T, D)
        h = self.norm(self.encoder(h, src_key_padding_mask=~real))
        m = real.unsqueeze(-1).to(h.dtype)
        return (h * m).sum(1) / m.sum(1).clamp_min(1.0)  # (B, D)


class TextVectors(nn.Module):
    """Fixed document vectors (B, n_inputs) -> linear (or one hidden layer) -> logits.

    Example:
        >>> TextVectors(4, 3)(torch.zeros(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self, n_inputs: int, n_outputs: int, *, hidden: int = 0, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.feature_dim = n_inputs
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            layers += [nn.Linear(n_inputs, hidden), nn.ReLU(), nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden or n_inputs, n_outputs))
        self.net = nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


class TextTabular(nn.Module):
    """A text branch's document vector joined with table columns -> logits.

    The branch is any text family with ``features(ids)`` (its own output layer is dropped); the table
    part reads the table preprocessor's outputs: ``x_num`` (B, F) scaled numbers and one-hot blocks,
    ``x_cat`` (B, C) codes of wide categoricals (embedded). The columns go through one hidden layer,
    then the document vector and that layer's output meet in the linear output layer.

    Args:
        text: The text branch (a built text family).
        n_numeric: Width of ``x_num``.
        n_outputs: Logits.
        cardinalities: Table sizes of the embedded categoricals. Defaults to none.
        embedding_dims: Their widths. Defaults to none.
        hidden: The table part's width. Defaults to `64`.
        dropout: On the joined vector. Defaults to `0.1`.

    Example:
        >>> m = TextTabular(TextBag(10, 1, dim=4, buckets=5), 2, 3, cardinalities=[4], embedding_dims=[2])
        >>> m(torch.tensor([[2, 3, 0], [4, 0, 0]]), torch.zeros(2, 2), torch.tensor([[1], [0]])).shape
        torch.Size([2, 3])
    """

    def __init__(
        self,
        text: nn.Module,
        n_numeric: int,
        n_outputs: int,
        *,
        cardinalities: list[int] | None = None,
        embedding_dims: list[int] | None = None,
        hidden: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        for name in ("head", "out", "net"):  # the branch's own output layer: not used here
            if isinstance(getattr(text, name, None), nn.Module):
                setattr(text, name, nn.Identity())
        self.text = text
        cards, dims = list(cardinalities or []), list(embedding_dims or [])
        self.embeds = nn.ModuleList(nn.Embedding(c, d) for c, d in zip(cards, dims, strict=True))
        self.table = nn.Sequential(nn.Linear(n_numeric + sum(dims), hidden), nn.ReLU())
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(int(text.feature_dim) + hidden, n_outputs)  # type: ignore[arg-type]

    def forward(
        self, ids: torch.Tensor, x_num: torch.Tensor, x_cat: torch.Tensor | None = None
    ) -> torch.Tensor:
        parts = [x_num]
        if x_cat is not None:
            parts += [emb(x_cat[:, i]) for i, emb in enumerate(self.embeds)]  # (B, d_i)
        h = self.table(torch.cat(parts, dim=1))  # (B, hidden)
        t = self.text.features(ids)  # type: ignore[operator]  # (B, D)
        return self.out(self.drop(torch.cat([t, h], dim=1)))  # type: ignore[no-any-return]


@register_model("text_bag")
def _build_bag(spec: dict[str, Any]) -> nn.Module:
    _check(spec, ("vocab_size", "n_outputs", "dim"))
    return TextBag(
        spec["vocab_size"],
        spec["n_outputs"],
        dim=spec["dim"],
        buckets=int(spec.get("buckets", 200_000)),
        hidden=int(spec.get("hidden") or 0),
        dropout=float(spec.get("dropout", 0.0)),
        idf=bool(spec.get("idf", False)),
    )


@register_model("text_rnn")
def _build_rnn(spec: dict[str, Any]) -> nn.Module:
    _check(spec, ("vocab_size", "n_outputs", "dim", "hidden"))
    return TextRNN(
        spec["vocab_size"],
        spec["n_outputs"],
        dim=spec["dim"],
        hidden=spec["hidden"],
        cell=str(spec.get("cell", "gru")),
        bidirectional=bool(spec.get("bidirectional", True)),
        dropout=float(spec.get("dropout", 0.2)),
    )


@register_model("text_transformer")
def _build_transformer(spec: dict[str, Any]) -> nn.Module:
    _check(spec, ("vocab_size", "n_outputs", "dim", "heads", "layers", "max_length"))
    return TextTransformer(
        spec["vocab_size"],
        spec["n_outputs"],
        dim=spec["dim"],
        heads=spec["heads"],
        layers=spec["layers"],
        max_length=spec["max_length"],
        dropout=float(spec.get("dropout", 0.1)),
    )


@register_model("text_vectors")
def _build_vectors(spec: dict[str, Any]) -> nn.Module:
    _check(spec, ("n_inputs", "n_outputs"))
    return TextVectors(
        spec["n_inputs"],
        spec["n_outputs"],
        hidden=int(spec.get("hidden") or 0),
        dropout=float(spec.get("dropout", 0.1)),
    )


@register_model("text_tabular")
def _build_text_tabular(spec: dict[str, Any]) -> nn.Module:
    from dlpipe.models.registry import build_model

    _check(spec, ("n_outputs",))
    text = spec.get("text")
    if not isinstance(text, dict):
        raise InvalidConfigError(
            f"model spec of family 'text_tabular' needs `text`, the text branch's spec (a dict); got {text!r}."
        )
    return TextTabular(
        build_model(text),
        int(spec.get("n_numeric") or 0),
        spec["n_outputs"],
        cardinalities=[int(c) for c in spec.get("cardinalities") or []],
        embedding_dims=[int(d) for d in spec.get("embedding_dims") or []],
        hidden=int(spec.get("hidden") or 64),
        dropout=float(spec.get("dropout", 0.1)),
    )
