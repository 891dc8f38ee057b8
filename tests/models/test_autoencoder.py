"""Autoencoders, VAE and GAN networks: shapes, decoders, warnings and bad specs."""

import pytest
import torch

from dlpipe.core.errors import DlpipeWarning, InvalidConfigError
from dlpipe.models.autoencoder import default_hidden, warn_if_identity
from dlpipe.models.registry import build_model
from dlpipe.models.vae import split_vae_output


@pytest.mark.parametrize("decoder", ["transpose", "unpool"])
def test_conv_autoencoder_decoders_restore_the_image_shape(decoder):
    ae = build_model(
        {"family": "conv_autoencoder", "channels": 1, "size": 8, "latent": 3, "decoder": decoder}
    )
    x = torch.rand(5, 1, 8, 8)
    assert ae.encode(x).shape == (5, 3)
    out = ae(x)
    assert out.shape == x.shape
    out.sum().backward()
    assert all(p.grad is not None for p in ae.parameters())


def test_unpool_decoder_puts_values_where_the_maxima_were():
    ae = build_model(
        {
            "family": "conv_autoencoder",
            "channels": 1,
            "size": 8,
            "latent": 3,
            "decoder": "unpool",
            "widths": [4],
        }
    )
    x = torch.rand(2, 1, 8, 8)
    _, indices = ae._encode(x)
    up = ae.unpool(torch.ones(2, 4, 4, 4), indices[0])
    assert up.shape == (2, 4, 8, 8)
    assert int((up != 0).sum()) == 2 * 4 * 16  # exactly one non-zero per 2x2 window
    with pytest.raises(InvalidConfigError, match="unpooling decoder needs the pooling indices"):
        ae.decode(torch.zeros(2, 3))


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_recurrent_autoencoder_shapes(cell):
    ae = build_model(
        {
            "family": "recurrent_autoencoder",
            "n_features": 3,
            "seq_len": 7,
            "latent": 2,
            "cell": cell,
        }
    )
    x = torch.randn(4, 7, 3)
    assert ae.encode(x).shape == (4, 2)
    assert ae(x).shape == (4, 7, 3)


def test_dense_autoencoder_and_vae_shapes():
    ae = build_model({"family": "autoencoder", "n_inputs": 10, "latent": 3, "hidden": [8]})
    assert ae(torch.randn(4, 10)).shape == (4, 10)
    vae = build_model(
        {"family": "vae", "n_inputs": 64, "latent": 2, "hidden": [16], "shape": [1, 8, 8]}
    )
    out = vae(torch.rand(4, 1, 8, 8))
    recon, mu, logvar = split_vae_output(out, 2)
    assert recon.shape == (4, 64) and mu.shape == logvar.shape == (4, 2)
    assert vae.decode(torch.zeros(3, 2)).shape == (3, 1, 8, 8)
    vae.eval()
    torch.testing.assert_close(
        vae(torch.ones(2, 1, 8, 8)), vae(torch.ones(2, 1, 8, 8))
    )  # eval: the mean, no noise


def test_gan_generators_and_discriminators():
    spec = {"family": "gan", "arch": "dcgan", "latent": 16, "shape": [1, 8, 8], "width": 8}
    g, d = build_model(spec), build_model({**spec, "family": "gan_discriminator"})
    img = g(torch.randn(3, 16))
    assert img.shape == (3, 1, 8, 8) and float(img.detach().abs().max()) <= 1.0
    assert d(img).shape == (3, 1)
    tab = {"family": "gan", "arch": "mlp", "latent": 4, "shape": [6], "hidden": [8]}
    assert build_model(tab)(torch.randn(3, 4)).shape == (3, 6)
    assert build_model({**tab, "family": "gan_discriminator"})(torch.randn(3, 6)).shape == (3, 1)


def test_latent_as_wide_as_the_input_warns():
    with pytest.warns(
        DlpipeWarning, match=r"`latent` is 10 but the input has only 10 values.*learn the identity"
    ):
        warn_if_identity(10, 10)


def test_bad_specs_are_refused_in_one_sentence():
    with pytest.raises(InvalidConfigError, match=r"`latent` is 0.*`hidden` is \[0\]"):
        build_model({"family": "autoencoder", "n_inputs": 4, "latent": 0, "hidden": [0]})
    with pytest.raises(
        InvalidConfigError, match=r"`decoder` is 'upsample' but must be one of transpose, unpool"
    ):
        build_model({"family": "conv_autoencoder", "size": 8, "decoder": "upsample"})
    with pytest.raises(InvalidConfigError, match=r"image size 10 is not divisible by 2\*\*2"):
        build_model({"family": "conv_autoencoder", "size": 10})
    with pytest.raises(
        InvalidConfigError, match=r"DCGAN needs square images whose side is divisible by 4"
    ):
        build_model({"family": "gan", "arch": "dcgan", "shape": [1, 10, 10]})
    with pytest.raises(InvalidConfigError, match=r"`cell` is 'rnn'"):
        build_model(
            {"family": "recurrent_autoencoder", "n_features": 2, "seq_len": 4, "cell": "rnn"}
        )


def test_a_narrow_code_gets_a_wide_encoder():
    assert default_hidden(30, 8) == [
        64,
        32,
    ]  # mild compression: the small encoder (anomaly scores stay sharp)
    assert (
        default_hidden(64, 2) == [256, 128]
        and default_hidden(784, 16) == [512, 256]
        and default_hidden(4, 1) == [64, 32]
    )
    ae = build_model({"family": "autoencoder", "n_inputs": 64, "latent": 2})
    assert ae.encoder[0].out_features == 256
    conv = build_model({"family": "conv_autoencoder", "size": 8, "latent": 2, "dense": 32})
    assert conv.encode(torch.zeros(3, 1, 8, 8)).shape == (3, 2) and conv(
        torch.zeros(3, 1, 8, 8)
    ).shape == (3, 1, 8, 8)
    assert conv.decode(torch.zeros(3, 2)).shape == (3, 1, 8, 8)
