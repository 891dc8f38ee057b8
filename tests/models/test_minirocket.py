"""MiniRocket on torch: dilations and biases as the reference algorithm, the compiled pooling equal to
torch's, leave-one-out ridge equal to refitting without each case, and a fitted model that separates."""

from itertools import combinations

import numpy as np
import pytest
import torch

import dlpipe.models.minirocket as mr
from dlpipe.core.errors import InvalidConfigError
from dlpipe.models.registry import build_model
from tests.native_kernels import require_kernel


def _waves(n, length=40, seed=0, classes=2):
    """Class c: a bump of width 4 at position 8 + 8c, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    x = 0.3 * torch.randn(n, length, 1, generator=g)
    for i, c in enumerate(y.tolist()):
        x[i, 8 + 8 * c : 12 + 8 * c, 0] += 2.0
    return x, torch.ones(n, length), y


def test_dilations_follow_the_reference_rule():
    # Dempster et al.'s _fit_dilations: 119 features per kernel, up to 32 dilations, exponent log2((T-1)/8)
    assert mr.fit_dilations(24, 10_000) == ([1, 2], [79, 40])
    d, per = mr.fit_dilations(150, 10_000)
    assert d[0] == 1 and d[-1] <= (150 - 1) // 8 and sum(per) == 119


def test_biases_are_quantiles_of_one_training_case():
    torch.manual_seed(0)
    m = mr.MiniRocket({"n_features": 1, "length": 30, "n_outputs": 1, "num_features": 168})
    x = torch.randn(5, 30, 1)
    m._fit_biases(x.transpose(1, 2), torch.ones(5, 30), torch.Generator().manual_seed(3))
    # the reference: kernel k at dilation 1 on the case drawn for it, numpy's linear quantiles
    pick = torch.randint(5, (84,), generator=torch.Generator().manual_seed(3))
    levels = mr._quantiles(m.n_out_features).numpy()
    n_f = m.per_dilation[0]
    for k, pos in ((0, (0, 1, 2)), (83, (6, 7, 8))):
        assert tuple(combinations(range(9), 3))[k] == pos
        w = -np.ones(9)
        w[list(pos)] = 2.0
        series = np.pad(x[pick[k], :, 0].numpy().astype(np.float64), 4)
        conv = np.array([series[t : t + 9] @ w for t in range(30)])
        expect = np.quantile(conv, levels[k * n_f : (k + 1) * n_f])
        np.testing.assert_allclose(m.biases[k * n_f : (k + 1) * n_f].numpy(), expect, atol=1e-4)


@pytest.mark.parametrize("channels", [1, 3])
def test_compiled_pooling_equals_torch(channels, monkeypatch):
    require_kernel("minirocket")  # a skip without a compiler, a failure when its build fails
    g = torch.Generator().manual_seed(1)
    x = torch.randn(12, 45, channels, generator=g)
    mask = torch.ones(12, 45)
    mask[3:6, 30:] = 0.0  # padded cases: masked steps never count
    y = torch.arange(12) % 3
    m = mr.MiniRocket({"n_features": channels, "length": 45, "n_outputs": 3, "num_features": 420})
    m.fit(x, mask, y, seed=0)
    compiled = m.transform(x, mask)
    monkeypatch.setattr(mr, "_native", lambda x: None)
    reference = m.transform(x, mask)
    assert compiled.shape == (12, m.n_out_features)
    torch.testing.assert_close(compiled, reference, atol=1e-6, rtol=0)


@pytest.mark.parametrize("n, f", [(12, 30), (40, 6)])  # Gram (N <= F) and covariance (N > F) forms
def test_leave_one_out_ridge_equals_refitting_without_each_case(n, f):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(n, f, generator=g, dtype=torch.float64)
    y = torch.sign(torch.randn(n, 1, generator=g, dtype=torch.float64))
    coef, intercept, alpha, loo = mr.ridge_cv(z, y, alphas=np.array([0.7]))
    for i in (0, n // 2, n - 1):
        keep = torch.arange(n) != i
        zk, yk = z[keep], y[keep]
        zm, ym = zk.mean(0), yk.mean(0)
        zc = zk - zm
        w = torch.linalg.solve(zc.T @ zc + alpha * torch.eye(f, dtype=z.dtype), zc.T @ (yk - ym))
        torch.testing.assert_close(loo[i], (z[i] - zm) @ w + ym)
    zc = z - z.mean(0)
    w = torch.linalg.solve(zc.T @ zc + 0.7 * torch.eye(f, dtype=z.dtype), zc.T @ (y - y.mean(0)))
    torch.testing.assert_close(coef, w)
    torch.testing.assert_close(intercept, y.mean(0) - z.mean(0) @ w)


@pytest.mark.parametrize("classes", [2, 3])
def test_fit_separates_new_cases_with_probabilities(classes):
    x, mask, y = _waves(30, classes=classes)
    xt, mt, yt = _waves(30, seed=1, classes=classes)
    n_out = 1 if classes == 2 else classes
    m = build_model(
        {
            "family": "minirocket",
            "n_features": 1,
            "length": 40,
            "n_outputs": n_out,
            "num_features": 840,
        }
    )
    info = m.fit(x, mask, y if classes > 2 else y[:, None].float(), seed=0)
    assert info["loo_accuracy"] == 1.0 and 1e-3 <= info["alpha"] <= 1e3
    logits = m(xt, mt).detach()
    pred = (logits[:, 0] > 0).long() if n_out == 1 else logits.argmax(1)
    assert (pred == yt).float().mean() == 1.0
    p1 = torch.sigmoid(logits[:, 0])
    proba = torch.stack([1 - p1, p1], 1) if n_out == 1 else logits.softmax(1)
    assert float(proba[torch.arange(30), yt].min()) > 0.5 and torch.isfinite(logits).all()


def test_spec_errors_are_collected_in_one_sentence():
    with pytest.raises(InvalidConfigError, match=r"`length` is 0.*`num_features` is 10"):
        build_model(
            {
                "family": "minirocket",
                "n_features": 1,
                "length": 0,
                "n_outputs": 2,
                "num_features": 10,
            }
        )


def test_loading_builds_the_kernel_before_the_first_prediction():
    from dlpipe.models.fused import warm_kernels

    require_kernel("minirocket")  # a skip without a compiler, a failure when its build fails
    m = mr.MiniRocket({"n_features": 1, "length": 20, "n_outputs": 2, "num_features": 168})
    assert warm_kernels(m) == ["minirocket"]
