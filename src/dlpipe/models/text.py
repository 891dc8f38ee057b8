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

import warnings
from typing import Any

import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError
from dlpipe.models.registry import register_model

__all__ = [
    "TextBag",
    "TextRNN",
    "TextTransformer",
    "TextTfidf",
    "TextVectors",
    "TextTabular",
    "BIGRAM_PRIME",
    "ngram_vocabulary",
    "char_vocabulary",
    "nb_ratios",
]

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


# ------------------------------------------------------------------------- TF-IDF n-gram network
def ngram_vocabulary(
    ids: Any, vocab_size: int, *, min_df: int = 2, max_bigrams: int = 200_000
) -> dict[str, Any]:
    """The n-gram vocabulary of :class:`TextTfidf` from the training documents' token ids (N, T), 0 = padding.

    Features: every word id seen in at least ``min_df`` documents, and the ``max_bigrams`` word pairs
    (adjacent real tokens) seen in the most documents (at least ``min_df``); feature 0 is "none". Each
    feature's smooth IDF (scikit-learn's: ``ln((1 + N) / (1 + df)) + 1``). Word pairs are found by two
    hash tables of coprime sizes (a pair's key ``a * vocab_size + b`` is stored in the first table whose
    slot is free; lookups compare keys, so a pair is never mistaken for another).

    Returns numpy arrays: ``word_feature`` (vocab_size,), ``idf`` (F,), ``keys1``/``feat1`` and
    ``keys2``/``feat2`` (the two tables), and counts ``n_words``, ``n_bigrams``, ``dropped``.
    """
    import numpy as np

    ids = np.asarray(ids, np.int64)
    n = len(ids)
    word_df = np.zeros(vocab_size, np.int64)
    pair_keys = []
    for row in ids:
        row = row[row != 0]
        word_df[np.unique(row)] += 1
        if len(row) > 1:
            pair_keys.append(np.unique(row[:-1] * vocab_size + row[1:]))
    word_df[0] = 0
    words = np.flatnonzero(word_df >= min_df)
    keys, df = (
        np.unique(np.concatenate(pair_keys), return_counts=True)
        if pair_keys
        else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    )
    ok = df >= min_df
    keys, df = keys[ok], df[ok]
    order = np.argsort(-df, kind="stable")[:max_bigrams]
    keys, df = keys[order], df[order]
    word_feature = np.zeros(vocab_size, np.int64)
    word_feature[words] = np.arange(1, len(words) + 1)
    m1 = max(1024, 2 * len(keys) + 1) | 1  # odd
    m2 = m1 + 2  # two odd numbers 2 apart: coprime
    keys1, feat1 = np.full(m1, -1, np.int64), np.zeros(m1, np.int64)
    keys2, feat2 = np.full(m2, -1, np.int64), np.zeros(m2, np.int64)
    first = 1 + len(words)
    kept_df: list[int] = []
    dropped = 0
    for key, d in zip(keys.tolist(), df.tolist(), strict=True):
        f = first + len(kept_df)
        s1, s2 = key % m1, key % m2
        if keys1[s1] < 0:
            keys1[s1], feat1[s1] = key, f
        elif keys2[s2] < 0:
            keys2[s2], feat2[s2] = key, f
        else:
            dropped += 1
            continue
        kept_df.append(d)
    all_df = np.concatenate([[0], word_df[words], np.asarray(kept_df, np.int64)]).astype(np.float64)
    idf = np.log((1 + n) / (1 + all_df)) + 1.0
    idf[0] = 0.0
    return {
        "word_feature": word_feature,
        "idf": idf,
        "keys1": keys1,
        "feat1": feat1,
        "keys2": keys2,
        "feat2": feat2,
        "n_words": int(len(words)),
        "n_bigrams": int(len(kept_df)),
        "dropped": int(dropped),
    }


def nb_ratios(ids: Any, labels: Any, vocab: dict[str, Any], *, alpha: float = 1.0) -> Any:
    """Each n-gram feature's largest one-vs-rest log-count ratio over the classes (F,): NBSVM's ``r``
    (Wang & Manning 2012) for several classes, from the training documents' token ids (N, T) and class
    codes (N,). For class ``c``, ``p`` / ``q`` are ``alpha`` plus the documents containing the feature
    inside / outside ``c`` (binary counts, as NBSVM's) and ``r_c = ln((p / |p|_1) / (q / |q|_1))``; the
    result is ``max_c r_c``, negatives 0 (feature 0, "none": 0). With ``vocab`` :func:`ngram_vocabulary`'s
    arrays, the features are those :class:`TextTfidf` computes."""
    import numpy as np
    import scipy.sparse as sp

    ids = np.asarray(ids, np.int64)
    y = np.asarray(labels, np.int64).reshape(-1)
    n_features = len(vocab["idf"])
    model = TextTfidf(
        len(vocab["word_feature"]),
        1,
        n_features=n_features,
        table_sizes=(len(vocab["keys1"]), len(vocab["keys2"])),
        hidden=0,
    )
    model.load_vocabulary(vocab)
    rows, cols = [], []
    with torch.no_grad():
        for lo in range(0, len(ids), 512):
            f = model.ngrams(torch.from_numpy(ids[lo : lo + 512])).numpy()  # (B, L), 0 = none
            doc = np.broadcast_to(np.arange(lo, lo + len(f))[:, None], f.shape)
            rows.append(doc[f != 0])
            cols.append(f[f != 0])
    rows_all = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols_all = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    x = sp.csr_matrix(
        (np.ones(len(rows_all)), (rows_all, cols_all)), shape=(len(ids), n_features)
    )  # documents x features, duplicates summed
    x.data[:] = 1.0  # binary: the documents containing each feature
    n_classes = int(y.max()) + 1 if len(y) else 1
    onehot = sp.csr_matrix((np.ones(len(y)), (np.arange(len(y)), y)), shape=(len(y), n_classes))
    inside = np.asarray((onehot.T @ x).todense())  # (C, F)
    p = alpha + inside
    q = alpha + (inside.sum(0, keepdims=True) - inside)
    r = np.log(p / p.sum(1, keepdims=True)) - np.log(q / q.sum(1, keepdims=True))
    out = np.clip(r.max(0), 0.0, None)
    out[0] = 0.0
    return out


def _doc_words(ids: Any, vocab_size: int) -> Any:
    """Documents x words, a scipy CSR matrix of each word's count in each document of ``ids`` (N, T);
    ids 0 and 1 (padding and the unknown word, which have no character n-grams) are left out."""
    import numpy as np
    import scipy.sparse as sp

    flat = ids.reshape(-1)
    real = flat > 1
    rows = np.repeat(np.arange(len(ids)), ids.shape[1])[real]
    # the constructor sums duplicate entries: counts
    return sp.csr_matrix(
        (np.ones(int(real.sum())), (rows, flat[real])), shape=(len(ids), vocab_size)
    )


def char_vocabulary(
    ids: Any,
    words: list[str],
    *,
    first: int,
    ngram_range: tuple[int, int] = (2, 5),
    min_df: int = 2,
    max_per_word: int = 64,
) -> dict[str, Any]:
    """The character n-grams of :class:`TextTfidf` (``char_slots``) from the training documents' token ids (N, T).

    A word's n-grams are those of its text padded with a space each side, ``ngram_range`` long (as
    scikit-learn's ``analyzer="char_wb"``, here on the tokenizer's words: lowercased, NFKC), at most
    ``max_per_word`` of them (shorter n first; a word of up to 16 characters keeps all of its 2-5 grams);
    an n-gram is kept when the words holding it appear in at least ``min_df`` training documents. Kept
    n-grams become features ``first``, ``first + 1``, ... with their smooth IDF. ``words[i]`` is the text
    of token id ``i`` (ids 0 and 1, padding and the unknown word, get no n-grams).

    Returns ``word_chars`` (len(words), K) int64 (a word's features, one slot per occurrence in the
    word, 0 = none), ``idf`` (C,) and ``n_chars``.
    """
    import numpy as np
    import scipy.sparse as sp

    lo, hi = ngram_range
    ids = np.asarray(ids, np.int64)
    index: dict[str, int] = {}
    per_word: list[list[int]] = []
    for i, w in enumerate(words):
        if i < 2 or not w:
            per_word.append([])
            continue
        padded = f" {w} "
        grams = [padded[k : k + n] for n in range(lo, hi + 1) for k in range(len(padded) - n + 1)]
        per_word.append([index.setdefault(g, len(index)) for g in grams[:max_per_word]])
    v = len(words)
    rows = np.repeat(np.arange(v), [len(g) for g in per_word])
    cols = np.fromiter((c for g in per_word for c in g), np.int64, count=len(rows))
    word_gram = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(v, max(1, len(index))))
    # documents x words (presence), then the documents holding each n-gram
    doc_word = _doc_words(ids, v)
    doc_word.data[:] = 1.0  # presence only
    doc_gram = (doc_word @ word_gram).tocsc()
    doc_gram.data[:] = 1.0
    df = np.asarray(doc_gram.sum(axis=0)).reshape(-1)
    kept = np.flatnonzero(df >= min_df)
    feature = np.zeros(len(df), np.int64)
    feature[kept] = first + np.arange(len(kept))
    width = max(1, max((len(g) for g in per_word), default=1))
    table = np.zeros((v, width), np.int64)
    for i, g in enumerate(per_word):
        f = feature[np.asarray(g, np.int64)] if g else np.zeros(0, np.int64)
        f = f[f != 0]
        table[i, : len(f)] = f
    idf = np.log((1 + len(ids)) / (1 + df[kept].astype(np.float64))) + 1.0
    return {"word_chars": table, "idf": idf, "n_chars": int(len(kept))}


def word_gram_matrix(word_chars: Any, n_features: int) -> Any:
    """Words x features, a scipy CSR matrix of how often each feature occurs in each word
    (:func:`char_vocabulary`'s table ``word_chars``; 0 = an empty slot): what :func:`char_matrix`
    multiplies the documents' word counts by. It depends only on the vocabulary, so a model may keep it."""
    import numpy as np
    import scipy.sparse as sp

    table = np.asarray(word_chars, np.int64)
    v, k = table.shape
    slots = table.reshape(-1)
    has = slots != 0
    return sp.csr_matrix(
        (np.ones(int(has.sum())), (np.repeat(np.arange(v), k)[has], slots[has])),
        shape=(v, n_features),
    )


def char_matrix(
    ids: Any, word_chars: Any, idf: Any, *, weight: float = 1.0, word_gram: Any = None
) -> Any:
    """The character n-gram block of :class:`TextTfidf`'s input for documents ``ids`` (N, T), once, as a
    scipy CSR matrix (N, len(idf)): what the model computes from token ids in every forward pass, so a
    training run can hand each batch its rows instead (``TextTfidf.forward``'s ``char_features``).

    ``word_chars`` is :func:`char_vocabulary`'s table (features numbered from ``first``), ``idf`` the
    model's whole IDF buffer (words, pairs, then characters). A feature's value is its sublinear tf x
    idf, ``(1 + ln tf) * idf``, with tf its occurrences in the document's words; each row has L2 norm
    ``weight`` (no n-grams: an empty row). ``word_gram``: :func:`word_gram_matrix` of ``word_chars``,
    when the caller kept it (built here otherwise).
    """
    import numpy as np

    ids = np.asarray(ids, np.int64)
    idf = np.asarray(idf, np.float64)
    if word_gram is None:
        word_gram = word_gram_matrix(word_chars, len(idf))
    out = (_doc_words(ids, word_gram.shape[0]) @ word_gram).tocsr()
    out.sum_duplicates()
    out.sort_indices()
    out.data = idf[out.indices] * (1.0 + np.log(out.data))
    norm = np.sqrt(np.asarray(out.multiply(out).sum(axis=1)).reshape(-1))
    scale = weight / np.maximum(norm, 1e-6)
    out.data *= np.repeat(scale, np.diff(out.indptr))
    return out


class PaddedRows:
    """A scipy CSR matrix's rows as padded ``(features, weights)`` (R, width): each row's column
    indices and values, then feature 0 with weight 0 (what :meth:`TextTfidf.occurrences` takes as
    ``char_features`` / ``char_weights``). The arrays are converted once; a call picks rows."""

    def __init__(self, matrix: Any) -> None:
        import numpy as np

        self.indptr = torch.from_numpy(np.asarray(matrix.indptr, np.int64))
        # one extra entry, so that padding positions index something even in an empty matrix
        self.indices = torch.from_numpy(np.append(np.asarray(matrix.indices, np.int64), 0))
        self.data = torch.from_numpy(np.append(np.asarray(matrix.data, np.float32), 0.0))

    def __call__(self, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``rows`` (R,) of the matrix (default: all), padded to the longest of them."""
        if rows is None:
            rows = torch.arange(len(self.indptr) - 1)
        start = self.indptr[rows]
        count = self.indptr[rows + 1] - start
        width = max(1, int(count.max())) if len(count) else 1
        slot = torch.arange(width)
        inside = slot[None, :] < count[:, None]
        pos = torch.where(inside, start[:, None] + slot[None, :], len(self.indices) - 1)
        return self.indices[pos], self.data[pos]


def _tracing() -> bool:
    """Whether a graph is being traced or compiled (export, TorchScript): data-dependent Python is out."""
    return bool(torch.jit.is_tracing() or torch.compiler.is_compiling())


def _scipy_route(ids: torch.Tensor) -> bool:
    """Whether :class:`TextTfidf` computes the character block of ``ids`` with :func:`char_matrix`:
    eager calls on CPU (not a traced or exported graph, whose tensor route works on any device)."""
    return ids.device.type == "cpu" and not _tracing()


class _SparseBag(torch.autograd.Function):
    """A sum ``EmbeddingBag`` with per-occurrence weights whose weight gradient is built as one sparse
    matrix product: the batch's distinct rows (sorted once) x the output's gradient, returned as a
    coalesced sparse tensor. torch's own sparse backward writes one gradient row per occurrence and
    leaves the optimiser to merge them; on bags of thousands of occurrences per document that took
    ~7x as long (docs/text.md, "Training speed")."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        weight: torch.Tensor,
        features: torch.Tensor,
        offsets: torch.Tensor,
        weights: torch.Tensor,
    ) -> torch.Tensor:
        ctx.save_for_backward(features, offsets, weights)
        ctx.shape = weight.shape
        return nn.functional.embedding_bag(
            features, weight, offsets, mode="sum", per_sample_weights=weights
        )

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None]:  # type: ignore[override]
        features, offsets, weights = ctx.saved_tensors
        n = features.shape[0]
        counts = torch.diff(offsets, append=offsets.new_tensor([n]))
        doc = torch.repeat_interleave(torch.arange(len(offsets), device=grad.device), counts)
        rows, order = torch.sort(features)
        distinct, per_row = torch.unique_consecutive(rows, return_counts=True)
        crow = torch.zeros(len(distinct) + 1, dtype=torch.int64, device=grad.device)
        crow[1:] = per_row.cumsum(0)
        # (distinct rows x documents), a row's occurrences in a document summed by the product
        with (
            warnings.catch_warnings()
        ):  # "Sparse CSR tensor support is in beta": the product is not
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            occ = torch.sparse_csr_tensor(
                crow,
                doc[order],
                weights[order].to(grad.dtype),
                (len(distinct), len(offsets)),
                check_invariants=False,  # built sorted above; checking costs a pass
            )
        values = occ @ grad
        out = torch.sparse_coo_tensor(
            distinct[None], values, ctx.shape, is_coalesced=True, check_invariants=False
        )
        return out, None, None, None


def _bag_sum(
    bag: nn.EmbeddingBag, features: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """``bag(features, offsets, per_sample_weights=weights)``; in a training step (training mode, a
    gradient wanted, not traced for export) through :class:`_SparseBag`, whose sparse gradient is the
    same, built faster."""
    if (
        bag.training
        and bag.sparse
        and bag.weight.requires_grad
        and torch.is_grad_enabled()
        and features.numel()
        and not (torch.jit.is_tracing() or torch.compiler.is_compiling())
    ):
        out: torch.Tensor = _SparseBag.apply(bag.weight, features, offsets, weights)  # type: ignore[no-untyped-call]
        return out
    return bag(features, offsets, per_sample_weights=weights)  # type: ignore[no-any-return]


class TextTfidf(nn.Module):
    """A network on TF-IDF-weighted word 1-2 grams, computed from token ids inside the model.

    Each document's features (words and adjacent word pairs of the n-gram vocabulary fitted on the
    training split, :func:`ngram_vocabulary`) get sublinear tf x idf weights, ``(1 + ln tf) * idf``,
    and the vector is L2-normalised (as scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``); it
    enters the first layer as the weights of a sum ``EmbeddingBag`` (only the document's own
    features are read), then a ReLU hidden layer with dropout and a linear output (``hidden=0``: the
    first layer is the output, a linear model). Only the first layer's rows of a batch's n-grams get
    gradients (``sparse``): the text recipe trains it with a lazy Adam. The vocabulary lives in buffers (saved with the
    weights as safetensors), so token ids in, logits out.

    Args:
        vocab_size: Token ids of the tokenizer (0 is padding).
        n_outputs: Logits.
        n_features: N-gram features including feature 0 ("none").
        table_sizes: The sizes of the two word-pair hash tables.
        hidden: The hidden layer's width (0: linear). Defaults to `256`.
        dropout: Before the output layer. Defaults to `0.5`.
        skip: Beside the hidden layer (needs one), a linear path from the TF-IDF vector straight to the logits
            ("wide and deep"; a second sparse ``EmbeddingBag``, trained by the same lazy Adam),
            initialised at zero, so the untrained network computes what it would without it.
            Defaults to `False`.
        skip_scale: The linear path's logits are its bag's output times this: with Adam, its learning
            rate times this (a unit-norm TF-IDF vector needs large weights to move logits). Defaults to `1.0`.
        char_slots: Character n-grams beside the words (:func:`char_vocabulary`): the width of the
            buffer of each word's n-gram features (0: none). Their sublinear tf x idf vector is
            L2-normalised on its own and joins the words' (as scikit-learn's word and ``char_wb``
            vectorizers stacked side by side); its features follow the words' and pairs' in
            ``n_features``. Defaults to `0`.
        char_weight: The character n-grams' vector (unit norm) times this beside the words' and pairs'
            (unit norm). Defaults to `1.0`.

    Example:
        >>> m = TextTfidf(10, 3, n_features=6, table_sizes=(5, 7), hidden=4)
        >>> m(torch.tensor([[2, 3, 0], [4, 0, 0]])).shape
        torch.Size([2, 3])
    """

    # the first layer (and the linear path) hold nearly all the weights (R8: 105,358 x 256); the text
    # recipe rounds them to float16 after training and the bundle stores them so, at half the size
    # (dlpipe.bundle.bundle.round_to_float16; the run evaluates the rounded network)
    stored_float16 = ("embed.weight", "skip.weight")

    def __init__(
        self,
        vocab_size: int,
        n_outputs: int,
        *,
        n_features: int,
        table_sizes: tuple[int, int],
        hidden: int = 256,
        dropout: float = 0.5,
        skip: bool = False,
        skip_scale: float = 1.0,
        char_slots: int = 0,
        char_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if skip and not hidden:
            raise InvalidConfigError(
                "`skip` (a linear path beside the hidden layer) needs a hidden layer but `hidden` is 0; "
                "set `hidden` to a width, or leave `skip` off (with `hidden` 0 the model is linear already)."
            )
        self.vocab_size = vocab_size
        self.word_feature: torch.Tensor
        self.keys1: torch.Tensor
        self.feat1: torch.Tensor
        self.keys2: torch.Tensor
        self.feat2: torch.Tensor
        m1, m2 = table_sizes
        for name, size, fill in (
            ("word_feature", vocab_size, 0),
            ("keys1", m1, -1),
            ("feat1", m1, 0),
            ("keys2", m2, -1),
            ("feat2", m2, 0),
        ):
            self.register_buffer(name, torch.full((size,), fill, dtype=torch.int64))
        self.idf: torch.Tensor
        self.register_buffer("idf", torch.ones(n_features))
        # each word's character n-gram features (created only when asked: older bundles load as before)
        self.word_chars: torch.Tensor | None
        if char_slots:
            self.register_buffer(
                "word_chars", torch.zeros((vocab_size, char_slots), dtype=torch.int64)
            )
        else:
            self.word_chars = None
        self.char_weight = float(char_weight)
        width = hidden or n_outputs
        self.feature_dim = width
        # sparse gradients: a step updates only the rows of the batch's n-grams (the text recipe's
        # optimiser, pipeline/_fit_text.py; every other parameter goes to the engine's)
        self.embed = nn.EmbeddingBag(
            n_features, width, mode="sum", sparse=True, _weight=_init(n_features, width)
        )
        self.bias = nn.Parameter(torch.zeros(width))
        self.hidden = hidden
        layers: list[nn.Module] = []
        if hidden:
            layers += [nn.Dropout(dropout), nn.Linear(hidden, n_outputs)]
        self.head = nn.Sequential(*layers) if layers else nn.Identity()
        # the linear path, created only when asked, so bundles without it keep their weights' names
        self.skip: nn.EmbeddingBag | None = None
        self.skip_scale = float(skip_scale)
        if skip:
            self.skip = nn.EmbeddingBag(
                n_features,
                n_outputs,
                mode="sum",
                sparse=True,
                _weight=torch.zeros(n_features, n_outputs),
            )

    def _word_gram(self) -> Any:
        """:func:`word_gram_matrix` of the vocabulary, built once and kept until ``word_chars`` changes
        (loading weights or a vocabulary writes it in place, which bumps its version): building it
        cost ~10 ms of a one-document prediction's ~14 (R8)."""
        assert self.word_chars is not None
        key = (self.word_chars.data_ptr(), self.word_chars._version, len(self.idf))
        kept = self.__dict__.get("_word_gram_kept")
        if kept is None or kept[0] != key:
            kept = (key, word_gram_matrix(self.word_chars.numpy(), len(self.idf)))
            self.__dict__["_word_gram_kept"] = kept
        return kept[1]

    @staticmethod
    def _cut(ids: torch.Tensor) -> torch.Tensor:
        if not _tracing() and ids.shape[1] > 1:
            # documents are padded at the end: cut the batch to its longest document (the engine pads
            # every batch to the longest training document; sorting padding costs up to 10x here)
            ids = ids[:, : max(1, int((ids != 0).sum(1).max()))]
        return ids

    def ngrams(self, ids: torch.Tensor) -> torch.Tensor:
        """Each token's word feature and each adjacent pair's feature: (B, T) -> (B, 2T - 1), 0 = none."""
        ids = self._cut(ids)
        words = self.word_feature[ids]  # padding (id 0) maps to 0
        if ids.shape[1] < 2:
            return words  # type: ignore[no-any-return]
        a, b = ids[:, :-1], ids[:, 1:]
        key = a * self.vocab_size + b
        pair = (a != 0) & (b != 0)
        s1 = key % self.keys1.shape[0]
        s2 = key % self.keys2.shape[0]
        f = torch.where(self.keys1[s1] == key, self.feat1[s1], 0) + torch.where(
            self.keys2[s2] == key, self.feat2[s2], 0
        )
        return torch.cat([words, f * pair], dim=1)

    def occurrences(
        self,
        ids: torch.Tensor,
        char_features: torch.Tensor | None = None,
        char_weights: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each document's feature occurrences and their weights: ``(feature, weight, real)``, each (B, L);
        a feature's weights in a document sum to its sublinear tf x idf value over the L2 norm (with
        ``char_slots``: the words' and pairs' vector of unit norm, the character n-grams' of norm
        ``char_weight``). ``char_features`` / ``char_weights`` (B, C), 0 = none: the character block
        computed beforehand (:func:`char_matrix`'s rows, padded) instead of from ``ids``."""
        f, w, real = self._weigh(self.ngrams(ids))
        if self.word_chars is None:
            return f, w, real
        if char_features is None and _scipy_route(ids):
            # the same block through scipy (char_matrix), several times faster on CPU than sorting
            # every occurrence of every n-gram below; a traced or exported graph keeps the tensor route
            block = char_matrix(
                self._cut(ids).numpy(),
                self.word_chars.numpy(),
                self.idf.numpy(),
                weight=self.char_weight,
                word_gram=self._word_gram(),
            )
            char_features, char_weights = PaddedRows(block)()
        if char_features is not None and char_weights is not None:
            keep = char_features != 0
            return (
                torch.cat([f, char_features], 1),
                torch.cat([w, char_weights.to(w.dtype)], 1),
                torch.cat([real, keep], 1),
            )
        # (B, T, K) -> (B, T * K): every occurrence of every n-gram of every token
        c = self.word_chars[self._cut(ids)].flatten(1)
        fc, wc, rc = self._weigh(c, once=True)
        if self.char_weight != 1.0:
            wc = wc * self.char_weight
        return torch.cat([f, fc], 1), torch.cat([w, wc], 1), torch.cat([real, rc], 1)

    def _weigh(
        self, feats: torch.Tensor, once: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sorted features (B, L) with their sublinear tf x idf weights over the L2 norm. ``once``: only
        the first occurrence of a feature is real and carries its whole value (character n-grams: many
        occurrences per document, so the bag and its sparse gradient see each feature once)."""
        f, _ = feats.sort(dim=1)  # equal features side by side (0 = none first)
        n, length = f.shape
        start = torch.ones_like(f, dtype=torch.bool)
        start[:, 1:] = f[:, 1:] != f[:, :-1]
        run = (
            start.long().cumsum(1) - 1
        )  # (B, L): the index of each position's run of equal features
        run_len = torch.zeros(n, length, dtype=torch.float32, device=f.device).scatter_add(
            1, run, torch.ones(n, length, dtype=torch.float32, device=f.device)
        )
        tf = run_len.gather(1, run)  # (B, L): each position's feature count in its document
        real = f != 0
        value = self.idf[f] * (1.0 + torch.log(tf))  # a feature's sublinear tf x idf
        if once:
            real = real & start
            norm = ((value * value) * real).sum(1, keepdim=True).sqrt().clamp_min(1e-6)
            return f, value / norm, real
        norm = ((value * value / tf) * real).sum(1, keepdim=True).sqrt().clamp_min(1e-6)
        w = value / tf / norm  # per occurrence: the tf occurrences sum to the feature's value
        return f, w, real

    def _bag(
        self, ids: torch.Tensor, *chars: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The bag's inputs: the real occurrences' features, their per-document offsets, their weights."""
        f, w, keep = self.occurrences(ids, *chars)
        counts = keep.sum(dim=1)
        offsets = torch.cumsum(counts, 0) - counts
        return f[keep], offsets, w[keep]

    def _hidden(self, bag: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        f, offsets, w = bag
        h = _bag_sum(self.embed, f, offsets, w) + self.bias
        return torch.relu(h) if self.hidden else h

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """The hidden layer (B, hidden) after its ReLU (with ``hidden=0``: the logits): what a text branch
        beside table columns gives (the linear path, if any, is not part of it)."""
        return self._hidden(self._bag(ids))

    def forward(self, ids: torch.Tensor, *chars: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) to logits; ``chars``: optionally the character block computed beforehand,
        ``(char_features, char_weights)`` (see :meth:`occurrences`), which a training run passes so that
        it is not recomputed every epoch."""
        bag = self._bag(ids, *chars)
        out = self.head(self._hidden(bag))
        if self.skip is not None:  # the TF-IDF vector straight to the logits
            f, offsets, w = bag
            out = out + self.skip_scale * _bag_sum(self.skip, f, offsets, w)
        return out  # type: ignore[no-any-return]

    def load_vocabulary(self, vocab: dict[str, Any], chars: dict[str, Any] | None = None) -> None:
        """Fill the buffers from :func:`ngram_vocabulary`'s arrays (and :func:`char_vocabulary`'s, whose
        features follow: ``first`` = the n-gram vocabulary's feature count)."""
        import numpy as np

        with torch.no_grad():
            for name in ("word_feature", "keys1", "feat1", "keys2", "feat2"):
                getattr(self, name).copy_(torch.from_numpy(vocab[name]))
            idf = vocab["idf"]
            if chars is not None:
                if self.word_chars is None:
                    raise ValueError(
                        "character n-grams given to a TextTfidf built without `char_slots`"
                    )
                self.word_chars.copy_(torch.from_numpy(chars["word_chars"]))
                idf = np.concatenate([idf, chars["idf"]])
            self.idf.copy_(torch.from_numpy(idf).float())


def _init(rows: int, width: int) -> torch.Tensor:
    """The first layer's weights: U(-1/sqrt(k), 1/sqrt(k)) with k ~ 100 features per document (a
    TF-IDF vector has unit norm, so a unit's input scale is that of a linear layer's over ~k inputs)."""
    weight = torch.empty(rows, width)
    if weight.device.type != "meta":
        with torch.no_grad():
            weight.uniform_(-0.1, 0.1)
    return weight


@register_model("text_tfidf")
def _build_tfidf(spec: dict[str, Any]) -> nn.Module:
    _check(spec, ("vocab_size", "n_outputs", "n_features"))
    sizes = spec.get("table_sizes")
    if not (
        isinstance(sizes, list | tuple)
        and len(sizes) == 2
        and all(isinstance(s, int) and s > 0 for s in sizes)
    ):
        raise InvalidConfigError(
            f"model spec of family 'text_tfidf' needs `table_sizes`, two positive integers; got {sizes!r}."
        )
    return TextTfidf(
        spec["vocab_size"],
        spec["n_outputs"],
        n_features=spec["n_features"],
        table_sizes=(int(sizes[0]), int(sizes[1])),
        hidden=int(spec.get("hidden") or 0),
        dropout=float(spec.get("dropout", 0.5)),
        skip=bool(spec.get("skip", False)),  # bundles from before the key: no linear path
        skip_scale=float(spec.get("skip_scale", 1.0)),
        char_slots=int(spec.get("char_slots", 0)),  # bundles from before the key: words only
        char_weight=float(spec.get("char_weight", 1.0)),  # bundles from before the key: 1
    )
