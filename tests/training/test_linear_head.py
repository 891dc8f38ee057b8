"""The logistic head on fixed features (frozen encoders' heads): regularisation chosen by CV, standardisation folded in."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from dlpipe.training.linear_head import fit_joint_head, fit_logistic_head


def _blobs(n: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = rng.normal(size=(3, 12))
    # features on very different scales: standardisation matters, and must be folded back correctly
    x = (centres[y] + noise * rng.normal(size=(n, 12))) * np.geomspace(0.01, 100, 12)
    return x, y


def test_head_is_the_standardised_logistic_regression_on_raw_features():
    x, y = _blobs(90, 0.5)
    fit = fit_logistic_head(x, y, 3)
    ref = make_pipeline(
        StandardScaler(), LogisticRegression(C=1.0 / (fit.weight_decay * len(y)), max_iter=1000)
    ).fit(x, y)
    # the returned weights take raw features: the same logits as scaler + regression
    np.testing.assert_allclose(x @ fit.weight.T + fit.bias, ref.decision_function(x), atol=1e-4)
    assert fit.folds == 5 and len(fit.cv_log_loss) == 7


def test_noisier_features_get_a_stronger_penalty_and_binary_has_one_logit():
    clean = fit_logistic_head(*_blobs(150, 0.2), 3)
    noisy = fit_logistic_head(*_blobs(150, 3.0), 3)
    assert noisy.weight_decay > clean.weight_decay
    x, y = _blobs(60, 0.5)
    two = fit_logistic_head(x, (y == 1).astype(int), 1)
    assert two.weight.shape == (1, 12) and two.bias.shape == (1,)
    assert ((x @ two.weight.T + two.bias)[:, 0] > 0).mean() > 0.2


def test_joint_head_folds_both_parts_and_learns_from_the_sparse_one():
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    n = 120
    y = np.arange(n) % 3
    dense = rng.normal(size=(n, 8)) * np.geomspace(0.01, 100, 8)  # noise: the label is not in it
    words = rng.integers(0, 20, size=(n, 6))
    words[:, 0] = 20 + y  # one word per class: the label is in the sparse part only
    rows = np.repeat(np.arange(n), 6)
    sparse = sp.csr_matrix((np.full(n * 6, 0.4), (rows, words.ravel())), shape=(n, 23))
    fit = fit_joint_head(dense, sparse, y, 3, weight_decay=1e-3)
    logits = dense @ fit.weight.T + sparse @ fit.sparse_weight.T + fit.bias
    scale = dense.std(axis=0) * np.sqrt(8)
    joint = sp.hstack([sp.csr_matrix((dense - dense.mean(axis=0)) / scale), sparse]).tocsr()
    ref = LogisticRegression(C=1.0 / (1e-3 * n), max_iter=3000).fit(joint, y)
    np.testing.assert_allclose(logits, ref.decision_function(joint), atol=1e-3)
    assert (logits.argmax(axis=1) == y).mean() == 1.0
    assert fit.info()["sparse_features"] == 23
