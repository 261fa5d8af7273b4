"""`model=stackgan_paper`: the paper's sizes (Zhang et al. 2017: 64 -> 256, c of 128, G0 with
1024 channels at 4x4) compose on CUB and build; the networks run at those sides (the training
step itself is tested at small sizes in tests/models/test_stackgan.py)."""

import torch
from hydra.utils import instantiate
from omegaconf import open_dict

from gans.data.cub import CUBDataModule
from gans.models.stackgan import StackGAN
from tests.conftest import compose_config


def test_paper_config_composes_on_cub_at_64_then_256():
    cfg = compose_config("model=stackgan_paper")
    assert cfg.data._target_ == f"{CUBDataModule.__module__}.{CUBDataModule.__name__}"
    assert cfg.data.image_size == 256 and cfg.model.stage1_size * cfg.model.scale == 256
    assert cfg.model.condition_dim == 128 and cfg.model.kl_weight == 2.0


def test_paper_networks_draw_64_then_256_and_both_stages_build():
    cfg = compose_config("model=stackgan_paper")
    g0, d0 = instantiate(cfg.model.stage1_generator), instantiate(cfg.model.stage1_discriminator)
    g1, d1 = instantiate(cfg.model.stage2_generator), instantiate(cfg.model.stage2_discriminator)
    assert g0.project[0].out_features == 1024 * 4 * 4  # the paper's G0 starts at 4x4x1024 (fig. 2)
    embedding = torch.randn(2, cfg.data.embedding_dim)
    with torch.no_grad():
        low, mu, _ = g0(torch.randn(2, g0.latent_dim), embedding)
        high, _, _ = g1(low, embedding)
        assert low.shape == (2, 3, 64, 64) and high.shape == (2, 3, 256, 256) and mu.shape == (2, 128)
        assert d0(low, embedding).shape == (2,) and d1(high, embedding).shape == (2,)
    with open_dict(cfg):
        cfg.data.num_classes = 200  # run.py reads it from the data: CUB's 200 species
    for stage in (1, 2):  # the module as run.py builds it; stage II's checkpoint is read at fit
        model = instantiate(cfg.model, stage=stage)
        assert isinstance(model, StackGAN) and model.low_side == 64
        assert model.generator.image_size == (64 if stage == 1 else 256)
