"""Generative task helpers: loss by input kind, per-sample errors, the VAE loss and KL annealing."""

import pytest
import torch

from dlpipe.core.errors import InvalidConfigError
from dlpipe.tasks.generative import KLWeight, per_sample_error, reconstruction_loss_for, vae_loss


def test_loss_follows_the_input_kind():
    assert reconstruction_loss_for("image") == "bce"
    assert (
        reconstruction_loss_for("table") == "mse" and reconstruction_loss_for("sequence") == "mse"
    )
    with pytest.raises(InvalidConfigError, match=r"input kind 'imag'.*did you mean `image`"):
        reconstruction_loss_for("imag")


def test_per_sample_error_is_one_number_per_row():
    x = torch.zeros(3, 4)
    recon = torch.tensor([[0.0] * 4, [1.0] * 4, [2.0] * 4])
    torch.testing.assert_close(per_sample_error(recon, x, "mse"), torch.tensor([0.0, 1.0, 4.0]))
    images = torch.rand(2, 1, 3, 3)
    logits = torch.logit(images.clamp(1e-4, 1 - 1e-4))
    perfect = per_sample_error(logits, images, "bce")
    worse = per_sample_error(-logits, images, "bce")
    assert perfect.shape == (2,) and bool((worse > perfect).all())


def test_kl_annealing_rises_linearly_then_stays_at_one():
    w = KLWeight(4)
    seen = [w.value]
    for epoch in range(1, 7):
        w.set_epoch(epoch)
        seen.append(w.value)
    assert seen == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert KLWeight(0).value == 1.0


def test_vae_loss_is_reconstruction_plus_weighted_kl():
    latent = 2
    x = torch.zeros(4, 3)
    out = torch.cat(
        [torch.ones(4, 3), torch.ones(4, latent), torch.zeros(4, latent)], dim=1
    )  # mu = 1, var = 1
    beta = KLWeight(2)
    loss_fn, metrics = vae_loss(latent, "mse", beta)
    m = metrics(out, x)
    torch.testing.assert_close(m["recon"], torch.tensor(3.0))  # sum of squared errors per row
    torch.testing.assert_close(m["kl"], torch.tensor(1.0))  # 0.5 * sum(mu^2) with unit variance
    torch.testing.assert_close(loss_fn(out, x), torch.tensor(3.0))  # beta = 0 at the start
    beta.set_epoch(1)
    torch.testing.assert_close(loss_fn(out, x), torch.tensor(3.5))
    torch.testing.assert_close(m["elbo"], torch.tensor(4.0))
