"""The hand-written MLP backward must give autograd's gradients, for every supported layer and loss."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from dlpipe.models.mlp import MLP
from dlpipe.tasks.losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, MAELoss, MSELoss
from dlpipe.training import TensorData, Trainer
from dlpipe.training.fastpath import make_fast_step
from dlpipe.training.optim import FlatOptimizer


def _targets(loss, n, out):
    if isinstance(loss, CrossEntropyLoss):
        return torch.randint(0, out, (n,))
    if isinstance(loss, BCEWithLogitsLoss):
        return torch.randint(0, 2, (n, out)).float()
    return torch.randn(n, out)


def _assert_fast_step_matches_autograd(a, loss, out):
    """One fast-path step of ``a`` and autograd on a copy give the same loss and gradients."""
    b = copy.deepcopy(a).train()
    FlatOptimizer(
        a.parameters(), "sgd"
    )  # gives a the persistent .grad views the fast path writes into
    step = make_fast_step(a, loss)
    assert step is not None
    x = torch.randn(9, 5) * 3
    y = _targets(loss, 9, out)
    value = step(x, y)
    ref = loss(b(x), y)  # an ensemble's (members, B, out): the mean of the members' losses
    ref.backward()
    torch.testing.assert_close(value, ref.detach())
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-5, atol=1e-6, msg=name)
    return step, b


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu", "leaky_relu", "silu"])
@pytest.mark.parametrize(
    "loss",
    [
        MSELoss(),
        HuberLoss(),
        MAELoss(),
        BCEWithLogitsLoss(),
        BCEWithLogitsLoss(torch.tensor([2.5])),
        CrossEntropyLoss(),
        CrossEntropyLoss(torch.tensor([1.0, 3.0, 0.5])),
    ],
    ids=["mse", "huber", "mae", "bce", "bce_pos_weight", "ce", "ce_weighted"],
)
def test_gradients_match_autograd(activation, loss):
    out = 3 if isinstance(loss, CrossEntropyLoss) else 1
    torch.manual_seed(0)
    _assert_fast_step_matches_autograd(MLP(5, out, hidden=(7, 6), activation=activation), loss, out)


@pytest.mark.parametrize(
    "loss",
    [
        MSELoss(),
        BCEWithLogitsLoss(torch.tensor([2.5])),
        CrossEntropyLoss(torch.tensor([1.0, 3.0, 0.5])),
    ],
    ids=["mse", "bce_pos_weight", "ce_weighted"],
)
def test_an_ensemble_of_members_gets_autograds_gradients(loss):
    out = 3 if isinstance(loss, CrossEntropyLoss) else 1
    torch.manual_seed(0)
    a = MLP(5, out, hidden=(7, 6), members=4, average="mean")
    step, _ = _assert_fast_step_matches_autograd(a, loss, out)
    assert step.logits_buffer(9, torch.device("cpu")) is None


@pytest.mark.parametrize("members", [1, 4])
@pytest.mark.parametrize(
    "loss", [MSELoss(), BCEWithLogitsLoss(), CrossEntropyLoss()], ids=["mse", "bce", "ce"]
)
def test_the_linear_skip_path_gets_autograds_gradients(members, loss):
    out = 3 if isinstance(loss, CrossEntropyLoss) else 1
    torch.manual_seed(0)
    average = "softmax" if isinstance(loss, CrossEntropyLoss) else "mean"
    a = MLP(5, out, hidden=(7, 6), members=members, average=average, skip=True)
    with torch.no_grad():  # away from its zero start, so a wrong gradient would show
        a.skip.weight.normal_()
        a.skip.bias.normal_()
    _, b = _assert_fast_step_matches_autograd(a, loss, out)
    assert b.skip.weight.grad.abs().sum() > 0


def test_dropout_uses_the_same_mask_forward_and_backward():
    torch.manual_seed(0)
    a = MLP(4, 1, hidden=(16,), dropout=0.5)
    FlatOptimizer(a.parameters(), "sgd")
    step = make_fast_step(a, MSELoss())
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    torch.manual_seed(1)
    step(x, y)
    grads = [p.grad.clone() for p in a.parameters()]
    b = copy.deepcopy(a).train()
    for p in b.parameters():
        p.grad = None
    torch.manual_seed(1)  # the fast path's mask: numpy uniforms seeded from torch's generator
    h = b.body[0](x)
    h = b.body[1](h)
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
    mask = torch.from_numpy((rng.random(h.shape, dtype=np.float32) < 0.5) / np.float32(0.5))
    assert 0 < mask.count_nonzero() < mask.numel()
    MSELoss()(b.body[3](h * mask), y).backward()
    for g, p in zip(grads, b.parameters()):
        torch.testing.assert_close(g, p.grad)


def test_not_taken_for_batch_norm_embeddings_or_plain_losses():
    bn = MLP(4, 1, hidden=(8,), batch_norm=True)
    FlatOptimizer(bn.parameters(), "sgd")
    assert make_fast_step(bn, MSELoss()) is None
    emb = MLP(4, 1, hidden=(8,), cardinalities=[5])
    FlatOptimizer(emb.parameters(), "sgd")
    assert make_fast_step(emb, MSELoss()) is None
    plain = MLP(4, 1, hidden=(8,))
    FlatOptimizer(plain.parameters(), "sgd")
    assert make_fast_step(plain, torch.nn.functional.mse_loss) is None


def test_trainer_fast_and_autograd_paths_agree():
    x = torch.randn(64, 6)
    y = (x[:, :1] > 0).float()
    results = []
    for fast in (True, False):
        torch.manual_seed(0)
        m = nn.Sequential(nn.Linear(6, 12), nn.Tanh(), nn.Linear(12, 1))
        t = Trainer(epochs=3, batch_size=16, device="cpu")
        t.fast_path = fast
        h = t.fit(m, BCEWithLogitsLoss(), TensorData((x,), y))
        results.append(
            (torch.cat([p.detach().flatten() for p in m.parameters()]), h.records[-1]["loss"])
        )
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-4, atol=1e-5)
    assert results[0][1] == pytest.approx(results[1][1], rel=1e-4)


def test_dropout_masks_keep_the_asked_share_and_are_unbiased():
    torch.manual_seed(0)
    model = MLP(4, 1, hidden=(16,), dropout=0.3)
    FlatOptimizer(model.parameters(), "sgd")
    step = make_fast_step(model, MSELoss())
    masks = torch.cat([step._dropout_mask(torch.empty(1000, 100), 0.7) for _ in range(5)])
    assert abs((masks > 0).float().mean().item() - 0.7) < 0.005  # 500k draws: sd ~0.0006
    assert masks.unique().tolist() == [0.0, pytest.approx(1 / 0.7)]
    assert abs(masks.mean().item() - 1.0) < 0.01  # inverted dropout keeps the expectation
