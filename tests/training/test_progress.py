import io

import torch
import torch.nn.functional as F

from dlpipe.training.callbacks import ProgressCallback
from dlpipe.training.trainer import TensorData, Trainer


def _fit(cb: ProgressCallback) -> None:
    x = torch.randn(64, 3)
    data = TensorData((x,), (x[:, :1] > 0).float())
    Trainer(epochs=2, batch_size=4, device="cpu", callbacks=[cb]).fit(
        torch.nn.Linear(3, 1), F.binary_cross_entropy_with_logits, data, data
    )


def test_rich_progress_adds_a_batch_bar_for_long_epochs():
    out = io.StringIO()
    _fit(ProgressCallback("rich", stream=out, batch_after_s=0.0))
    assert "batches of this epoch" in out.getvalue() and "epoch" in out.getvalue()


def test_plain_progress_pays_nothing_per_step():
    out = io.StringIO()
    cb = ProgressCallback("plain", stream=out)
    assert not hasattr(cb, "on_batch_end")
    _fit(cb)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("epoch 1/2") and lines[-1].startswith("trained 2 epochs")
