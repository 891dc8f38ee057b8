"""The MAE loss (forecasting many series, or `loss: mae` for a table) and its hand-written gradient."""

import torch
import torch.nn.functional as F

from dlpipe.tasks import Task
from dlpipe.tasks.losses import MAELoss


def test_mae_loss_and_its_gradient_match_autograd():
    torch.manual_seed(0)
    z = torch.randn(7, 3, requires_grad=True)
    y = torch.randn(7, 3)
    loss = MAELoss()
    value = loss(z, y)
    value.backward()
    assert torch.allclose(value, F.l1_loss(z, y))
    assert torch.allclose(loss.grad_logits(z.detach().clone(), y), z.grad)


def test_a_regression_task_told_mae_trains_on_it():
    assert isinstance(Task(kind="regression", target="y", loss="mae").loss_fn(), MAELoss)
