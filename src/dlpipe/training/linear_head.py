"""A linear head on fixed features fitted as a well-regularised logistic regression.

For frozen encoders (sentence vectors, averaged word vectors) the head is a convex problem: the
features are standardised (statistics of the fitting rows), the L2 strength is chosen by stratified
k-fold cross-validated log loss over a grid, and the head is refitted on every row with it, by
full-batch L-BFGS (scikit-learn's ``LogisticRegression``). The standardisation is folded into the returned weights, so the head
takes raw features: ``logits = x @ weight.T + bias``.

Why not the engine's minibatch loop: with a few hundred labelled documents, holding a tenth out for
early stopping and stepping with Adam left the head ~0.5-1 point below scikit-learn's logistic
regression on the same vectors (issue #19's few-label check); this is that regression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "LogisticFit",
    "fit_logistic_head",
    "fit_joint_head",
    "WEIGHT_DECAYS",
    "JOINT_WEIGHT_DECAY",
]

# L2 strengths on standardised features (the penalty is wd / 2 * ||W||^2 beside the mean log loss);
# scikit-learn's C = 1 / (wd * n). On 400 R8 documents' MiniLM vectors 5-fold accuracy was flat
# (0.915-0.92) from C = 0.1 to 1000, i.e. wd 2.5e-2 to 2.5e-6: the grid spans it.
WEIGHT_DECAYS = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4)
# The joint head (sentence vectors beside a sparse TF-IDF vector): chosen on 400-document samples of
# R8's training split scored on the other training documents (docs/text.md): accuracy rose as the
# penalty fell, C = 30 / 100 / 300 / 1,000 / 3,000 / 10,000 at n = 400 gave 0.9423 / 0.9442 / 0.9457 /
# 0.9473 / 0.9491 / 0.9486 (5 samples); 1e-6 is C = 2,500 there
JOINT_WEIGHT_DECAY = 1e-6


@dataclass
class LogisticFit:
    """The fitted head: ``weight`` (K, D) and ``bias`` (K,) on raw features, and how it was chosen."""

    weight: np.ndarray
    bias: np.ndarray
    weight_decay: float
    cv_log_loss: dict[str, float] = field(default_factory=dict)
    folds: int = 0
    sparse_weight: np.ndarray | None = (
        None  # (K, F): the joint head's weights on the sparse features
    )

    def info(self) -> dict[str, Any]:
        if self.sparse_weight is not None:
            return {
                "solver": "logistic regression (L-BFGS, full batch) on standardised sentence vectors "
                "(over sqrt(dim)) beside the TF-IDF vector",
                "weight_decay": self.weight_decay,
                "chosen_by": "fixed (chosen on development data, docs/text.md)",
                "sparse_features": int(self.sparse_weight.shape[1]),
            }
        return {
            "solver": "logistic regression (L-BFGS, full batch) on standardised features",
            "weight_decay": self.weight_decay,
            "chosen_by": f"{self.folds}-fold cross-validated log loss"
            if self.folds
            else "only value",
            "cv_log_loss": {k: round(v, 5) for k, v in self.cv_log_loss.items()},
        }


def _folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold number per row, each class spread evenly over the folds (stratified)."""
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(y), np.int64)
    start = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        fold[idx] = (np.arange(len(idx)) + start) % k
        start += len(idx)  # the next class continues where this one stopped: folds stay even
    return fold


def _log_loss(z: np.ndarray, y: np.ndarray) -> float:
    """Mean log loss of logits ``z`` (N, K) (K = 1: one binary logit) for codes ``y``."""
    if z.shape[1] == 1:
        z = np.column_stack([np.zeros(len(z)), z[:, 0]])
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


def _solve(x: Any, y: np.ndarray, wd: float, max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """argmin mean log loss + wd/2 ||W||^2 (the bias unpenalised): scikit-learn's L-BFGS logistic
    regression with C = 1 / (wd * n); returns (weight (K, D), bias (K,)), K = 1 for two classes."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    # One BLAS thread: these are small products, and on a busy 2-core machine a multi-threaded BLAS
    # took 5-8 s per fit where one thread took 0.1 s (400 x 384 vectors, 8 classes, load ~20)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)  # 1,000 iterations: close enough
        m = LogisticRegression(C=1.0 / (wd * len(y)), max_iter=max_iter).fit(x, y)
    return np.asarray(m.coef_, np.float64), np.asarray(m.intercept_, np.float64)


def fit_logistic_head(
    features: np.ndarray,
    y: np.ndarray,
    n_outputs: int,
    *,
    weight_decays: tuple[float, ...] = WEIGHT_DECAYS,
    folds: int | None = None,
    seed: int = 0,
) -> LogisticFit:
    """Fit ``n_outputs`` logits (1: binary, sigmoid; K: softmax) on ``features`` (N, D) and codes ``y`` (N,).

    Args:
        features: Fixed features of the fitting rows.
        y: Class codes (0/1 for binary).
        n_outputs: Logits of the head (1 for binary).
        weight_decays: The L2 grid. Defaults to :data:`WEIGHT_DECAYS`.
        folds: Cross-validation folds. Defaults to 5 below 2,000 rows, else 3 (at most the smallest class's count).
        seed: The folds' shuffle.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(60, 4)); y = (x[:, 0] > 0).astype(int)
        >>> fit = fit_logistic_head(x, y, 1)
        >>> bool(((x @ fit.weight.T + fit.bias)[:, 0] > 0).mean() > 0.9), fit.weight.shape
        (True, (1, 4))
    """
    x = np.asarray(features, np.float64)
    codes = np.asarray(y).reshape(-1).astype(np.int64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    xs = (x - mean) / std
    smallest = int(np.bincount(codes).min()) if len(codes) else 0
    k = folds if folds is not None else (5 if len(codes) < 2000 else 3)
    k = min(k, smallest)
    scores: dict[str, float] = {}
    decays = sorted(weight_decays, reverse=True)
    if k >= 2 and len(decays) > 1:
        fold = _folds(codes, k, seed)
        totals = np.zeros(len(decays))
        for f in range(k):
            fit_rows, held = fold != f, fold == f
            for i, wd in enumerate(decays):
                w, b = _solve(xs[fit_rows], codes[fit_rows], wd)
                totals[i] += _log_loss(xs[held] @ w.T + b, codes[held]) * int(held.sum())
        for wd, total in zip(decays, totals, strict=True):
            scores[f"{wd:g}"] = float(total / len(codes))
        chosen = decays[int(np.argmin(totals))]
    else:
        k, chosen = 0, decays[len(decays) // 2]
    w, b = _solve(xs, codes, chosen)
    if w.shape[0] != n_outputs:
        raise ValueError(f"the head has {n_outputs} outputs but the codes give {w.shape[0]} logits")
    # fold the standardisation in: ((x - mean) / std) @ W.T + b = x @ (W / std).T + (b - W @ (mean / std))
    weight = w / std[None, :]
    bias = b - w @ (mean / std)
    return LogisticFit(weight, bias, float(chosen), scores, k)


def fit_joint_head(
    features: np.ndarray,
    sparse: Any,
    y: np.ndarray,
    n_outputs: int,
    *,
    weight_decay: float = JOINT_WEIGHT_DECAY,
) -> LogisticFit:
    """One logistic regression on dense ``features`` (N, D) beside ``sparse`` features (N, F) (a scipy
    matrix, e.g. TF-IDF vectors of unit norm): the dense part standardised and divided by sqrt(D), so
    both parts have about unit norm per row; ``weight_decay`` as in :func:`fit_logistic_head`.

    Returns ``weight`` (K, D) on the raw dense features, ``bias`` (K,) and ``sparse_weight`` (K, F):
    ``logits = features @ weight.T + sparse @ sparse_weight.T + bias``.

    Example:
        >>> import scipy.sparse as sp
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(60, 4)); s = sp.random(60, 9, density=0.3, random_state=0, format="csr")
        >>> y = (x[:, 0] > 0).astype(int)
        >>> fit = fit_joint_head(x, s, y, 1, weight_decay=1e-3)
        >>> fit.weight.shape, fit.sparse_weight.shape
        ((1, 4), (1, 9))
    """
    import scipy.sparse as sp

    x = np.asarray(features, np.float64)
    codes = np.asarray(y).reshape(-1).astype(np.int64)
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0) * np.sqrt(x.shape[1])
    joint = sp.hstack([sp.csr_matrix((x - mean) / std), sp.csr_matrix(sparse)]).tocsr()
    w, b = _solve(joint, codes, weight_decay, max_iter=3000)  # a weak penalty converges slowly
    if w.shape[0] != n_outputs:
        raise ValueError(f"the head has {n_outputs} outputs but the codes give {w.shape[0]} logits")
    dense_w, sparse_w = w[:, : x.shape[1]], w[:, x.shape[1] :]
    weight = dense_w / std[None, :]
    bias = b - dense_w @ (mean / std)
    return LogisticFit(weight, bias, float(weight_decay), sparse_weight=sparse_w)
