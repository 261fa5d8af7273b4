"""SRGAN: Ledig et al. 2017, "Photo-Realistic Single Image Super-Resolution Using a Generative
Adversarial Network".

The SRResNet generator, initialised from a trained SRResNet ("we employed the trained MSE-based
SRResNet network as initialization for the generator when training the actual GAN to avoid
undesired local optima", sec. 3.2), against the paper's discriminator. The generator minimises
the perceptual loss (eq. 3)

    l_SR = l_X + 1e-3 * l_Gen,   l_Gen = -log D(G(I_LR))   (eq. 6, the non-saturating form)

with the content loss l_X the VGG54 feature distance (eq. 5; `gans.nets.content`: torchvision's
ImageNet VGG19 when it can be had, a stated ImageNet-trained substitute otherwise, or the pixel
MSE). The discriminator ascends log D(I_HR) + log(1 - D(G(I_LR))) (eq. 2). One D step, then one
G step per iteration, Adam (beta1 = 0.9), learning rate 1e-4 for 10^5 iterations then 1e-5 for
10^5 more (a step schedule counted in iterations).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from gans import losses
from gans.errors import GansError
from gans.models.base import AdversarialModule
from gans.models.srresnet import SuperResolution
from gans.nets.content import ContentNetwork, content_network


def load_generator(generator: nn.Module, path: str) -> None:
    """The generator's weights from a checkpoint of an SRResNet (or SRGAN) run, loaded with
    `torch.load(weights_only=True)`: its `generator.*` entries."""
    if not Path(path).is_file():
        raise GansError(f"model.generator_init={path} does not exist: give the last.ckpt of a model=srresnet run")
    state = torch.load(path, map_location="cpu", weights_only=True)
    weights = {k[len("generator.") :]: v for k, v in state.get("state_dict", {}).items() if k.startswith("generator.")}
    if not weights:
        raise GansError(f"model.generator_init={path} holds no generator weights: give the last.ckpt of a "
                        "model=srresnet run")  # fmt: skip
    try:
        generator.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else str(err)
        message = f"model.generator_init={path} does not fit this generator ({first}): train the SRResNet with the "
        raise GansError(message + "same data.scale and model.generator settings") from None


class SRGAN(SuperResolution, AdversarialModule):
    """Args (besides `AdversarialModule`'s):
    generator_init: an SRResNet checkpoint to start the generator from (None: random, not the paper's).
    content_loss: "vgg" (VGG54, falling back to the Inception substitute offline), "inception" or "mse".
    content_weights: a file with torchvision's VGG19 state dict (else torch hub's cache or the download).
    adversarial_weight: the weight of l_Gen (1e-3).
    channel, border: the PSNR/SSIM protocol (see `SuperResolution`).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        *args,
        generator_init: str | None = None,
        content_loss: str = "vgg",
        content_weights: str | None = None,
        adversarial_weight: float = 1e-3,
        channel: str = "y",
        border: int | None = None,
        **kwargs,
    ) -> None:
        if generator_init:  # before the base builds the EMA copy from the generator
            load_generator(generator, str(generator_init))
        super().__init__(generator, discriminator, *args, **kwargs)
        self.adversarial_weight = adversarial_weight
        # A plain dict, not a submodule: the frozen feature network stays out of checkpoints,
        # optimizers, DDP's gradient sync and the model's dtype casts.
        self._content: dict[str, ContentNetwork | None] = {"net": content_network(content_loss, content_weights)}
        self.setup_quality(generator.scale, channel, border)

    @property
    def content_net(self) -> ContentNetwork | None:
        net = self._content["net"]
        return None if net is None else net.to(self.device)

    def content(self, sr: Tensor, hr: Tensor) -> Tensor:
        """l_X: the mean squared distance of the (scaled) feature maps, or the pixel MSE."""
        net = self.content_net
        if net is None:
            return losses.mse_loss(sr, hr)
        with torch.no_grad():
            target = net(hr)
        return losses.mse_loss(net(sr), target)

    def prepare_batch(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """G(I_LR) once per iteration: D learns on it detached, then G through it."""
        batch = super().prepare_batch(batch)
        return {**batch, "fake": self.generator(batch["lr"])}

    def discriminator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """-log D(I_HR) - log(1 - D(G(I_LR)))."""
        real_logits = self.discriminator(batch["hr"])
        fake_logits = self.discriminator(batch["fake"].detach())
        loss = losses.bce_discriminator_loss(real_logits, fake_logits)
        return loss, self.mean_probabilities({"D(x)": real_logits, "D(G(z))": fake_logits})

    def generator_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """l_X + 1e-3 * -log D(G(I_LR)); logged before the weights."""
        fake = batch["fake"]
        adversarial = losses.nonsaturating_generator_loss(self.discriminator(fake))
        content = self.content(fake, batch["hr"])
        return content + self.adversarial_weight * adversarial, {"content_loss": content, "gan_loss": adversarial}
