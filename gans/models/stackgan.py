"""StackGAN: Zhang et al. 2017, "StackGAN: Text to Photo-realistic Image Synthesis with Stacked
Generative Adversarial Networks", text to image in two stages, on the networks of
`gans.nets.stackgan`.

Stage I (`stage=1`) draws a low-resolution image from noise z and the augmented text condition
c0 = mu0 + sigma0 * eps: G0(z, c0). Stage II (`stage=2`) trains afterwards, with stage I frozen
(loaded from `stage1_ckpt`, the paper's schedule: "we first train Stage-I GAN ... then train
Stage-II GAN with Stage-I GAN fixed", sec. 4): G1(s0, c) refines the stage-I image s0 to `scale`
times its side, with its own conditioning augmentation.

Both stages train the same way (sec. 3.2 and 3.3), alternating, maximising for D

    L_D = E[log D(I, phi_t)] + E[log(1 - D(G(z, c), phi_t))]                  (eq. 3 / 5)

with the matching-aware discriminator of Reed et al. 2016 ("Generative Adversarial Text to Image
Synthesis", Algorithm 1, GAN-CLS): a real image with its own caption is real; a real image with
a mismatched caption and a generated image with its caption are fake, weighted 1/2 each
(s_r + (s_w + s_f) / 2); and minimising for G

    L_G = E[log(1 - D(G(z, c), phi_t))] + lambda * KL(N(mu(phi_t), Sigma(phi_t)) || N(0, I))

in the non-saturating form (G ascends log D(G(z, c), phi_t)). lambda is `kl_weight`: the paper's
text says lambda = 1 (sec. 4); the authors' released configs use `COEFF.KL: 2.0`. The default is
2.0, because the KL here is reduced as in their code (mean over batch and dimensions,
`gans.nets.stackgan.kl_divergence`), the only published reduction, and 2.0 is the value that
reduction was tuned with.

Data: a captioned data module (`gans.data.captions`); each training step draws one of each
image's captions (as the authors' code draws one of an image's ten embeddings). The condition of
an image is its caption's frozen text embedding.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gans.data.base import to_uint8
from gans.data.text_embeddings import MINILM, embed
from gans.errors import GansError
from gans.metrics.classifier import predict
from gans.models.base import AdversarialModule, eval_mode
from gans.nets.stackgan import kl_divergence

log = logging.getLogger(__name__)
STAGES = (1, 2)
NETWORKS = ("stage1_generator", "stage1_discriminator", "stage2_generator", "stage2_discriminator")


def bce(logits: Tensor, target: float) -> Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def matching_aware_loss(
    real_match: Tensor, real_mismatch: Tensor, fake_match: Tensor, mismatch_weight: float = 0.5
) -> Tensor:
    """The matching-aware discriminator loss (Reed et al. 2016, Algorithm 1; Zhang et al. 2017's
    code): -log D(real, its text) - w * log(1 - D(real, other text)) - (1 - w) * log(1 - D(fake,
    its text)), w = 1/2: a real image with the wrong caption is as fake as a generated one."""
    return (
        bce(real_match, 1.0)
        + mismatch_weight * bce(real_mismatch, 0.0)
        + (1.0 - mismatch_weight) * bce(fake_match, 0.0)
    )


def resize(images: Tensor, side: int) -> Tensor:
    """Images at `side` (antialiased bilinear down, as the data's own resizing; nearest up, so a
    stage-I image shows its pixels next to stage II's)."""
    if images.shape[-1] == side:
        return images
    if images.shape[-1] > side:
        return F.interpolate(images, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(images, size=(side, side), mode="nearest")


class StackGAN(AdversarialModule):
    """Args (besides `AdversarialModule`'s, whose generator and discriminator this sets per stage):
    stage1_generator, stage1_discriminator: G0 and D0 (`gans.nets.stackgan`), at the stage-I side.
    stage2_generator, stage2_discriminator: G1 and D1, at the data's side.
    stage: 1 trains G0/D0; 2 trains G1/D1 on the frozen G0 of `stage1_ckpt`.
    stage1_ckpt: a stage-1 checkpoint of run.py (stage 2 only; loaded with weights_only=True).
    kl_weight: lambda of the conditioning augmentation's KL term (see the module docstring).
    mismatch_weight: the real-image/wrong-text term's share of the fake side of D's loss (1/2).
    text_encoder: the data's encoder ("minilm" or a .npz), for `--text` sampling.
    num_classes: the captions' classes (`data.num_classes`; 0 if none): class-aware metrics.
    grid_captions: rows of the caption | stage-I | stage-II grid, the first held-out captions.
    stage1_size, scale, condition_dim: the sizes the config builds the networks with (one place
        in the config; recorded with the checkpoint's hyperparameters).
    """

    class_conditional = True  # judged against the class of the caption (`condition_classes`)

    def __init__(
        self,
        stage1_generator: nn.Module,
        stage1_discriminator: nn.Module,
        stage2_generator: nn.Module,
        stage2_discriminator: nn.Module,
        stage: int = 1,
        stage1_ckpt: str | None = None,
        kl_weight: float = 2.0,
        mismatch_weight: float = 0.5,
        text_encoder: str = MINILM,
        num_classes: int = 0,
        grid_captions: int = 8,
        stage1_size: int | None = None,
        scale: int | None = None,
        condition_dim: int | None = None,
        **kwargs,
    ) -> None:
        if stage not in STAGES:
            raise GansError(f"model.stage={stage!r} must be 1 (G0, D0) or 2 (G1, D1 on a frozen stage I)")
        if stage == 2:
            # A sample's randomness is stage I's z (G1 takes none, sec. 3.3).
            stage2_generator.latent_dim = stage1_generator.latent_dim
            low, high = stage1_generator.image_size, stage2_generator.image_size
            if low * stage2_generator.scale != high:
                raise GansError(f"stage I draws {low}x{low} and model.scale={stage2_generator.scale}, but the data are "
                                f"{high}x{high}: set model.stage1_size={high // stage2_generator.scale}")  # fmt: skip
        generator, discriminator = (
            (stage1_generator, stage1_discriminator) if stage == 1 else (stage2_generator, stage2_discriminator)
        )
        with warnings.catch_warnings():  # Lightning's advice to ignore the networks: popped below
            warnings.filterwarnings("ignore", message="Attribute 'stage[12]_")
            super().__init__(generator=generator, discriminator=discriminator, **kwargs)
        for key in NETWORKS:  # networks are rebuilt from the config: the checkpoint keeps plain values
            self._hparams.pop(key, None)
            self._hparams_initial.pop(key, None)
        self.stage, self.stage1_ckpt = stage, stage1_ckpt
        self.kl_weight, self.mismatch_weight = float(kl_weight), float(mismatch_weight)
        self.text_encoder, self.num_classes, self.grid_captions = text_encoder, num_classes, grid_captions
        self.stage1 = stage1_generator.requires_grad_(False) if stage == 2 else None
        self.low_side = stage1_generator.image_size
        self._grid: tuple[list[str], Tensor] | None = None
        self._attributes: dict[str, Tensor] = {}

    # -- stage I for stage II: loaded once, frozen --------------------------------------------
    def setup(self, stage: str) -> None:
        if stage == "fit" and self.stage == 2:
            self.load_stage1()

    def load_stage1(self) -> None:
        """G0's weights from `stage1_ckpt` (a resumed stage-2 run then restores the same weights)."""
        path = self.stage1_ckpt
        if not path or not Path(path).is_file():
            given = f"model.stage1_ckpt={path} does not exist" if path else "model.stage=2 needs model.stage1_ckpt"
            raise GansError(
                f"{given}: pass a stage-1 checkpoint, e.g. RUN_DIR/checkpoints/last.ckpt of a model.stage=1 run"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("hyper_parameters", {}).get("stage") != 1:
            raise GansError(f"model.stage1_ckpt={path} is not a StackGAN stage-1 checkpoint (model.stage=1)")
        weights = {k[len("generator.") :]: v for k, v in state["state_dict"].items() if k.startswith("generator.")}
        try:
            self.stage1.load_state_dict(weights)
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise GansError(f"model.stage1_ckpt={path} does not fit this stage-I network ({first}): "
                            "use the stage-1 run's model settings") from None  # fmt: skip
        log.info("stage II on the frozen stage I of %s", path)

    def stage1_images(self, z: Tensor, embedding: Tensor) -> Tensor:
        """s0 = G0(z, c0) from the frozen stage I, in eval mode (its batch-norm statistics fixed)."""
        with torch.no_grad(), eval_mode(self.stage1):
            return self.stage1(z, embedding)[0]

    # -- conditions: text embeddings --------------------------------------------------------
    def condition_of(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["embedding"]

    def condition_classes(self, batch: dict[str, Tensor]) -> Tensor:
        return batch["label"]  # a caption names the class of the image it describes

    def embed_text(self, texts: list[str]) -> Tensor:
        """The frozen encoder's embeddings of captions, on the model's device (`--text`)."""
        return embed(list(texts), self.text_encoder).to(self.device)

    def sample_condition(self, n: int) -> Tensor:
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        table = getattr(datamodule, "caption_embeddings", None)
        if table is None:
            raise GansError(
                "StackGAN draws images for captions: pass one, e.g. python -m gans.sample CKPT N OUT --text 'a dark ankle boot'"
            )
        ids = datamodule.train_caption_ids[:, 0]
        pick = ids[torch.randint(0, len(ids), (n,), device=ids.device)]
        return table[pick].to(self.device)

    # -- sampling -----------------------------------------------------------------------------
    def synthesize(self, network: nn.Module, z: Tensor, condition: Tensor | None) -> Tensor:
        if self.stage == 1:
            return network(z, condition)[0]
        return network(self.stage1_images(z, condition), condition)[0]

    @torch.no_grad()
    def generate_stages(self, z: Tensor, embedding: Tensor, seed: int | None = None) -> tuple[Tensor, Tensor | None]:
        """(stage-I images, stage-II images or None in stage 1) for the same z and captions. With
        `seed`, the conditioning augmentation's eps is drawn from it (the run's random state is
        left as it was), so evaluations and grids score the same conditions every time."""
        z, embedding = z.to(self.device), embedding.to(self.device)
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, enabled=seed is not None), eval_mode(self.sampler) as sampler:
            if seed is not None:
                torch.manual_seed(seed)
            if self.stage == 1:
                return sampler(z, embedding)[0].float(), None
            low = self.stage1_images(z, embedding)
            return low.float(), sampler(low, embedding)[0].float()

    # -- training: Zhang et al. 2017, sec. 3 ------------------------------------------------------
    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Draw one caption per image (its embedding phi_t), its mismatched caption (another
        image's, the batch rolled by one), the real images at this stage's side and, in stage II,
        s0 = G0(z, c0) for the iteration."""
        batch = super().prepare_batch(batch)
        counts = batch["caption_count"]
        pick = (torch.rand(len(counts), device=counts.device) * counts).long()
        text = batch["caption_embeddings"][torch.arange(len(counts), device=counts.device), pick]
        batch = {**batch, "embedding": text, "wrong_embedding": text.roll(1, 0)}
        if self.stage == 1:
            batch["image"] = resize(batch["image"], self.low_side)
        else:
            batch["low"] = self.stage1_images(self.sample_latent(len(text)), text)
        return batch

    def fake_images(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """(G(z, c) or G1(s0, c), mu, log_sigma) for the batch's captions."""
        text = batch["embedding"]
        if self.stage == 1:
            return self.generator(self.sample_latent(len(text)), text)
        return self.generator(batch["low"], text)

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Ascend log D(I, phi_t) + 1/2 log(1 - D(I, phi_wrong)) + 1/2 log(1 - D(G(z, c), phi_t))."""
        real, text = batch["image"], batch["embedding"]
        fake = self.fake_images(batch)[0]  # no graph into G: G is toggled off here
        real_match = self.discriminator(real, text)
        real_mismatch = self.discriminator(real, batch["wrong_embedding"])
        fake_match = self.discriminator(fake, text)
        loss = matching_aware_loss(real_match, real_mismatch, fake_match, self.mismatch_weight)
        return loss, self.mean_probabilities({"D(x)": real_match, "D(x,wrong)": real_mismatch, "D(G(z))": fake_match})

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Descend -log D(G(z, c), phi_t) + lambda * KL(N(mu, Sigma) || N(0, I))."""
        fake, mu, log_sigma = self.fake_images(batch)
        kl = kl_divergence(mu, log_sigma)
        adversarial = bce(self.discriminator(fake, batch["embedding"]), 1.0)
        return adversarial + self.kl_weight * kl, {"kl": kl.detach()}

    # -- evaluation: FID per stage, text-image consistency --------------------------------------
    def evaluation_pairs(self, batch: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
        """The stage's FID at its side (`fid`), and in stage II stage I's at its own (`fid_stage1`),
        each generated image from the held-out caption and fixed latent of real image i."""
        z = self._eval_latents[batch["index"]]
        seed = self.sample_seed + 2 + int(batch["index"][0])  # per batch, the same at every evaluation
        low, high = self.generate_stages(z, self.condition_of(batch), seed)
        low_real = resize(batch["image"], self.low_side)
        if high is None:
            return {"": (low_real, low)}
        return {"": (batch["image"], high), "stage1": (low_real, low)}

    def reference_stream(self, stream: str) -> str:
        """Real features are named by the side they are taken at: stage I's 16x16 reals and stage II's
        32x32 reals of the same images must not share a cache file (stage II's `fid_stage1` and a
        stage-I run's `fid` do share one)."""
        return f"{self.low_side if stream == 'stage1' else self.generator.image_size}px"

    def _update_class_statistics(self, stage: str, batch: dict[str, Tensor], fakes: Tensor) -> None:
        """Class accuracy against the caption's class (the real data's classifier, at the data's
        side), and, where the data measure attributes, tone and size accuracy against the caption."""
        side = batch["image"].shape[-1]
        if fakes.shape[-1] != side:
            fakes = to_uint8(resize(fakes.float().div(127.5).sub(1.0), side))
        net = self._classifier["net"]
        labels = batch["label"]
        self._class_stats[stage].update(predict(net, fakes), predict(net, batch["image"]), labels, labels)
        datamodule = self.trainer.datamodule
        if hasattr(datamodule, "attribute_hits"):
            ids = batch["caption"].cpu()
            tones, sizes = datamodule.caption_attributes(ids)
            tone_hit, size_hit = datamodule.attribute_hits(fakes, labels, tones, sizes)
            hits = torch.stack([tone_hit.sum(), size_hit.sum(), (tone_hit & size_hit).sum(), torch.tensor(len(ids))])
            self._attributes[stage] = self._attributes.get(stage, torch.zeros(4, dtype=torch.long)) + hits

    def _finish_class_evaluation(self, stage: str, prefix: str, complete: bool) -> None:
        super()._finish_class_evaluation(stage, prefix, complete)
        hits = self._attributes.pop(stage, None)
        if hits is None:
            return
        hits = self.trainer.strategy.reduce(hits.to(self.device).float(), reduce_op="sum")
        values = dict(zip(("tone_acc", "size_acc", "attribute_acc"), hits[:3] / hits[3].clamp(min=1)))
        self.log_dict({f"{prefix}/{k}": v for k, v in values.items()})
        if self.global_rank == 0:
            log.info(f"{prefix}/attribute_acc = {float(values['attribute_acc']):.2%} (tone "
                     f"{float(values['tone_acc']):.2%}, size {float(values['size_acc']):.2%}) on {int(hits[3])} "
                     f"generated images, measured against their captions")  # fmt: skip

    # -- grids: caption | stage-I | stage-II, the same held-out captions every time ---------------
    def visuals(self, nrow: int, interpolation_rows: int, interpolation_steps: int) -> dict:
        if self._grid is None:
            texts, embeddings, _ = self.trainer.datamodule.held_out_captions(self.grid_captions)
            self._grid = (texts, embeddings)
        texts, embeddings = self._grid
        rows, columns = len(texts), max(1, min(nrow, len(self.fixed_z)) // (1 if self.stage == 1 else 2))
        z = self.fixed_z[:columns].repeat(rows, 1)
        low, high = self.generate_stages(z, embeddings.to(self.device).repeat_interleave(columns, 0), self.sample_seed)
        if high is None:
            grids = {"samples": (low, columns, texts)}
        else:
            pairs = torch.stack([resize(low, high.shape[-1]), high], 1).flatten(0, 1)  # stage I | stage II
            grids = {"samples": (pairs, 2 * columns, texts)}
        steps = interpolation_steps
        if interpolation_rows and steps > 1 and len(self.fixed_z) >= 2:
            n = min(interpolation_rows, rows)
            t = torch.linspace(0.0, 1.0, steps, device=z.device).view(1, -1, 1)
            path = (t * self.fixed_z[0] + (1.0 - t) * self.fixed_z[1]).expand(n, -1, -1).flatten(0, 1)
            text = embeddings[:n].to(self.device).repeat_interleave(steps, 0)
            low, high = self.generate_stages(path, text, self.sample_seed)
            grids["interpolation"] = (low if high is None else high, steps, texts[:n])
        return grids
