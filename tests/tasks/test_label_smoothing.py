"""Label smoothing of an ensemble's training loss (the default table model's small multiclass rule)."""

import copy

import pytest
import torch
import torch.nn.functional as F

from dlpipe.models.mlp import MLP
from dlpipe.tasks.losses import CrossEntropyLoss
from dlpipe.training.fastpath import make_fast_step
from dlpipe.training.optim import FlatOptimizer


def test_members_outputs_are_smoothed_and_averaged_logits_are_not():
    torch.manual_seed(0)
    loss = CrossEntropyLoss(smoothing=0.1)
    members, y = torch.randn(4, 6, 3), torch.randint(0, 3, (6,))
    expected = F.cross_entropy(members.flatten(0, 1), y.repeat(4), label_smoothing=0.1)
    torch.testing.assert_close(loss(members, y), expected)
    # (B, C) logits (validation loss, early stopping): the plain log loss the model is judged on
    logits = torch.randn(6, 3)
    torch.testing.assert_close(loss(logits, y), F.cross_entropy(logits, y))
    assert not torch.isclose(loss(members, y), CrossEntropyLoss()(members, y))


def test_an_ensemble_on_the_fast_path_gets_autograds_smoothed_gradients():
    torch.manual_seed(0)
    loss = CrossEntropyLoss(smoothing=0.03)
    a = MLP(5, 3, hidden=(7, 6), members=4, average="softmax")
    b = copy.deepcopy(a).train()
    FlatOptimizer(a.parameters(), "sgd")  # the persistent .grad views the fast path writes into
    step = make_fast_step(a, loss)
    assert step is not None
    x, y = torch.randn(9, 5) * 3, torch.randint(0, 3, (9,))
    value = step(x, y)
    ref = loss(b(x), y)
    ref.backward()
    torch.testing.assert_close(value, ref.detach())
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("kwargs", [{"smoothing": 1.0}, {"smoothing": -0.1}])
def test_smoothing_outside_its_range_is_refused(kwargs):
    with pytest.raises(ValueError, match="`smoothing` is"):
        CrossEntropyLoss(**kwargs)


def test_smoothing_with_class_weights_is_refused():
    with pytest.raises(ValueError, match="0 with class weights"):
        CrossEntropyLoss(torch.tensor([1.0, 2.0]), smoothing=0.1)


def test_a_plain_network_trains_on_the_plain_log_loss_on_either_path():
    # smoothing applies to members' outputs (k, B, C); a plain net's (B, C) training outputs are
    # scored plainly by autograd, so the fast path (which cannot tell them apart) steps aside
    loss = CrossEntropyLoss(smoothing=0.1)
    a = MLP(5, 3, hidden=(7,))
    FlatOptimizer(a.parameters(), "sgd")
    assert make_fast_step(a, loss) is None
    assert make_fast_step(a, CrossEntropyLoss()) is not None
