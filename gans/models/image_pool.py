"""The history of generated images CycleGAN's discriminators train on (Shrivastava et al. 2017,
"Learning from Simulated and Unsupervised Images through Adversarial Training", sec. 2.3; Zhu
et al. 2017, sec. 4: "we update the discriminators using a history of generated images rather
than the ones produced by the latest generators. We keep an image buffer that stores the 50
previously created images")."""

from __future__ import annotations

import torch
from torch import Tensor


class ImagePool:
    """A buffer of up to `size` generated images, with the authors' query rule.

    Image by image: while the pool is not full, the image is stored and returned; afterwards,
    with probability 1/2 a random stored image is returned and the new one takes its place, else
    the new image is returned. The batch is handled in one gather (no per-image device work);
    the bookkeeping replays the per-image rule, so an image may displace one stored earlier in
    the same batch. A plain object, not a module: it is not in the checkpoint (a resumed run
    refills it) and under DDP each process keeps its own pool, as the reference does.
    Randomness comes from torch's (CPU) generator, which the training loop seeds per epoch and rank.
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"pool size must be >= 0, got {size}")
        self.size, self.count = size, 0
        self.images: Tensor | None = None

    def __len__(self) -> int:
        return self.count

    @torch.no_grad()
    def query(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The images to show the discriminator in place of the batch `images` (detached)."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.images is None:
            self.images = images.new_empty((self.size, *images.shape[1:]))
        self.images = self.images.to(images)
        fill = min(len(images), self.size - self.count)
        self.images[self.count : self.count + fill] = images[:fill]
        self.count += fill
        rest = len(images) - fill
        if rest == 0:
            return images
        swap = (torch.rand(rest, generator=generator) > 0.5).tolist()
        slots = torch.randint(self.size, (rest,), generator=generator).tolist()
        # Indices into cat(pool, images): what each slot holds, and what each image is answered with.
        held = list(range(self.size))
        answer = list(range(self.size, self.size + len(images)))
        for j, (swapped, slot) in enumerate(zip(swap, slots), start=fill):
            if swapped:
                answer[j], held[slot] = held[slot], self.size + j
        both = torch.cat([self.images, images])
        self.images = both[held]
        return both[answer]
