"""The flat fused optimisers must match torch.optim step for step."""

import copy

import pytest
import torch
from torch import nn

from dlpipe.core.errors import InvalidConfigError
from dlpipe.training.optim import FlatOptimizer

CASES = [
    ("adam", dict(weight_decay=0.01), lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.01)),
    ("adamw", dict(weight_decay=0.01), lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.01)),
    (
        "sgd",
        dict(momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-3),
    ),
    ("sgd", dict(), lambda p: torch.optim.SGD(p, lr=0.01)),
    ("rmsprop", dict(momentum=0.5), lambda p: torch.optim.RMSprop(p, lr=0.01, momentum=0.5)),
]


@pytest.mark.parametrize(("kind", "kw", "reference"), CASES)
def test_matches_torch_optim(kind, kw, reference):
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    b = copy.deepcopy(a)
    ours = FlatOptimizer(a.parameters(), kind, learning_rate=0.01, **kw)
    theirs = reference(b.parameters())
    x, y = torch.randn(16, 4), torch.randn(16, 2)
    for _ in range(5):
        ours.zero_grad()
        nn.functional.mse_loss(a(x), y).backward()
        ours.step()
        theirs.zero_grad()
        nn.functional.mse_loss(b(x), y).backward()
        theirs.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_parameters_are_views_into_one_buffer():
    model = nn.Linear(3, 2)
    opt = FlatOptimizer(model.parameters(), "adam")
    assert opt.n_parameters == 8
    opt.groups[0].flat.zero_()
    assert model.weight.abs().sum() == 0


def test_clip_bounds_the_norm():
    model = nn.Linear(3, 1)
    opt = FlatOptimizer(model.parameters(), "sgd", learning_rate=0.1)
    (model(torch.full((4, 3), 100.0)).sum() * 100).backward()
    opt.grad_norm_clip_(1.0)
    assert torch.linalg.vector_norm(opt.groups[0].grad) <= 1.0 + 1e-5


def test_bad_arguments():
    with pytest.raises(InvalidConfigError, match=r"`optimizer` is 'adm'.*did you mean `adam`"):
        FlatOptimizer(nn.Linear(2, 1).parameters(), "adm")  # type: ignore[arg-type]
    with pytest.raises(InvalidConfigError, match="nesterov"):
        FlatOptimizer(nn.Linear(2, 1).parameters(), "adam", nesterov=True)


def test_state_dict_round_trip():
    model = nn.Linear(3, 1)
    opt = FlatOptimizer(model.parameters(), "adam")
    model(torch.ones(2, 3)).sum().backward()
    opt.step()
    state = opt.state_dict()
    other = FlatOptimizer(nn.Linear(3, 1).parameters(), "adam")
    other.load_state_dict(state)
    assert other.steps == 1
    torch.testing.assert_close(other.groups[0].state["exp_avg"], opt.groups[0].state["exp_avg"])


def test_channels_last_weights_keep_their_layout_and_match_torch_optim():
    # A channels_last conv weight made contiguous by the flat buffer would cost a layout conversion
    # in every convolution: the views keep each parameter's strides.
    torch.manual_seed(0)
    a = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3)).to(
        memory_format=torch.channels_last
    )
    b = copy.deepcopy(a)
    ours = FlatOptimizer(a.parameters(), "adam", learning_rate=0.01)
    theirs = torch.optim.Adam(b.parameters(), lr=0.01)
    assert (
        a[0].weight.is_contiguous(memory_format=torch.channels_last)
        and not a[0].weight.is_contiguous()
    )
    x = torch.randn(2, 3, 9, 9).contiguous(memory_format=torch.channels_last)
    for _ in range(3):
        for model, opt in ((a, ours), (b, theirs)):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    assert (
        a[2].weight.grad.data_ptr() >= ours.groups[0].grad.data_ptr()
    )  # still a view of the flat gradient
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)
