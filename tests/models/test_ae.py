"""The autoencoder: its loss, the ex-post mixture fit at evaluation and kept in checkpoints,
samples decoded from it, the grids, the evaluation streams, and one-line errors."""

import functools

import pytest
import torch
import torch.nn.functional as F

from gans.errors import GansError
from gans.models.ae import AE
from gans.nets.autoencoder import Encoder
from gans.nets.dcgan import Generator
from tests.models.test_base import make_trainer

adam = functools.partial(torch.optim.Adam, lr=1e-3)


def make_ae(code_dim: int = 4, decoder_dim: int | None = None, **kwargs) -> AE:
    torch.manual_seed(0)
    kwargs.setdefault("eval_fid", False)
    kwargs.setdefault("num_fixed_samples", 4)
    encoder = Encoder(code_dim=code_dim, image_size=16, channels=1, width=8)
    decoder = Generator(latent_dim=decoder_dim or code_dim, image_size=16, channels=1, width=8, output="linear")
    return AE(encoder, decoder, adam, code_dim=code_dim, mixture_components=3, mixture_fit_images=40, **kwargs)


@pytest.mark.parametrize("reconstruction", ["mse", "bce"])
def test_the_loss_is_the_reconstruction_error_through_the_code(reconstruction):
    model = make_ae(reconstruction=reconstruction)
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    loss, _ = model.reconstruction_loss({"image": images})
    logits, target = model.decoder(model.encoder(images)), (images + 1) / 2
    expected = F.mse_loss(logits.sigmoid(), target) if reconstruction == "mse" else F.binary_cross_entropy_with_logits(logits, target)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def trained(tmp_path, random_images, **kwargs):
    model, data = make_ae(**kwargs), random_images()
    make_trainer(tmp_path, limit_train_batches=3, limit_val_batches=1).fit(model, datamodule=data)
    return model


def test_the_mixture_is_fit_at_evaluation_and_samples_are_decoded_from_it(tmp_path, random_images):
    model = trained(tmp_path, random_images)
    assert model.mixture.fitted and int(model.mixture.fitted_at) == model.iteration == 3
    noise = model.draw_latent(6, torch.Generator().manual_seed(0), "cpu")
    assert noise.shape == (6, 4 + 1)  # the code's noise and the component's uniform number
    codes = model.prior_codes(noise)
    torch.testing.assert_close(codes, model.mixture.transform(noise[:, :4], noise[:, 4]))
    assert not torch.allclose(codes, noise[:, :4])
    images = model.generate_from(noise)
    assert images.shape == (6, 1, 16, 16) and images.min() >= -1 and images.max() <= 1
    # In the checkpoint's state, so a sampler loads it with the weights.
    assert {"mixture.weights", "mixture.means", "mixture.scale_tril", "mixture.fitted_at"} <= set(model.state_dict())


def test_without_a_mixture_and_without_data_sampling_says_what_to_do():
    with pytest.raises(GansError, match="holds no ex-post mixture"):
        make_ae().generate(2)
    assert make_ae(prior="normal").generate(2).shape == (2, 1, 16, 16)


def test_the_grids_pair_inputs_with_reconstructions_and_interpolate_between_held_out_codes(tmp_path, random_images):
    model = trained(tmp_path, random_images)
    grids = model.visuals(nrow=4, interpolation_rows=2, interpolation_steps=5)
    assert set(grids) == {"samples", "reconstructions", "interpolation"}
    images, nrow, names = grids["reconstructions"]
    held_out = model.held_out_images(8)
    assert nrow == 4 and names == ["input", "reconstruction", "input", "reconstruction"]
    torch.testing.assert_close(images[:4], held_out[:4])  # row 1: inputs; row 2: their reconstructions
    torch.testing.assert_close(images[4:8], model.reconstruct(held_out[:4]))
    path, steps = grids["interpolation"]
    assert steps == 5 and path.shape == (2 * 5, 1, 16, 16)
    torch.testing.assert_close(path[0], model.reconstruct(held_out[:1])[0], atol=1e-5, rtol=0)  # t = 0: image 0's code
    torch.testing.assert_close(path[4], model.reconstruct(held_out[2:3])[0], atol=1e-5, rtol=0)  # t = 1: image 2's


def test_evaluation_scores_samples_and_reconstructions_as_two_streams(tmp_path, random_images):
    model = trained(tmp_path, random_images)
    batch = {"image": model.held_out_images(4), "index": torch.arange(4)}
    model._eval_latents = model.draw_latent(4, torch.Generator().manual_seed(1), "cpu")
    model.prepare_evaluation(batch)
    pairs = model.evaluation_pairs(batch)
    assert set(pairs) == {"", "recon"}
    torch.testing.assert_close(pairs["recon"][1], model.reconstruct(batch["image"]))
    torch.testing.assert_close(pairs[""][1], model.generate_from(model._eval_latents))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decoder_dim": 5}, r"model.decoder.latent_dim=5 but model.code_dim=4"),
        ({"reconstruction": "l1"}, r"model.reconstruction must be one of mse, bce"),
        ({"prior": "uniform"}, r"model.prior must be one of expost, normal"),
        ({"ema_decay": 0.999}, r"model.ema_decay: an autoencoder decodes"),
    ],
)
def test_bad_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(GansError, match=message):
        make_ae(**kwargs)


def test_samples_and_reconstructions_share_one_set_of_real_features(tmp_path, random_images, monkeypatch):
    from gans.metrics.fid import reference_cache_path
    from gans.metrics.inception import InceptionFeatures

    data = random_images(num=72)
    data.setup("validate")
    real_batches = data.val_images.split(data.eval_batch_size)
    reference_cache_path(data.eval_fingerprint("validate"), "tf-bilinear").unlink(missing_ok=True)  # never scored
    seen = []
    forward = InceptionFeatures.forward
    monkeypatch.setattr(InceptionFeatures, "forward", lambda self, images: seen.append(images) or forward(self, images))
    for evaluation in range(2):  # the second evaluation reads the real features the first one cached
        seen.clear()
        model = make_ae(eval_fid=True)
        make_trainer(tmp_path).validate(model, datamodule=data, verbose=False)
        assert set(model._distances["validate"]) == {"", "recon"}
        reals = [x for x in seen if any(x.shape == r.shape and torch.equal(x, r) for r in real_batches)]
        assert len(reals) == (len(real_batches) if evaluation == 0 else 0)  # once per batch, for both streams
        assert len(seen) == 2 * len(real_batches) + len(reals)  # samples and reconstructions, and the reals
