"""`data=cub`: CUB-200-2011 (Wah et al. 2011, 11,788 bird images of 200 species) with the ten
captions per image collected by Reed et al. 2016 ("Learning Deep Representations of Fine-Grained
Visual Descriptions"), the data of StackGAN's bird results (Zhang et al. 2017).

Layout (what the two archives unpack to)::

    root/CUB_200_2011/images/001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg
    caption_root/text_c10/001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.txt

Labels are the 200 species folders; the split is a seeded random one of images (`val_size`,
`test_size`), not the authors' split by species (150 train+val / 50 test species, for zero-shot
evaluation), and the images are resized whole (the authors crop to 1.5x the bird's bounding box).
"""

from __future__ import annotations

import os
from pathlib import Path

from gans.data.captions import CaptionedFolderDataModule
from gans.data.download import fetch_into
from gans.errors import DataError

CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"
# Reed et al.'s cvpr2016_cub.tar.gz (Google Drive id 0B0ywwgffWnLLZW9uVHNjb2JmNlE), holding text_c10/.
CAPTIONS_URL = "https://drive.usercontent.google.com/download?id=0B0ywwgffWnLLZW9uVHNjb2JmNlE&export=download&confirm=t"


class CUBDataModule(CaptionedFolderDataModule):
    """CUB-200-2011 images with Reed et al.'s captions (see the module docstring).

    Args:
        root: the folder holding (or receiving) CUB_200_2011/.
        caption_root: the folder holding (or receiving) text_c10/ (None: `root`).
        download: fetch the missing archives when online.
        **kwargs: see `CaptionedFolderDataModule`.
    """

    name = "cub"

    def __init__(self, root: str, caption_root: str | None = None, download: bool = True, **kwargs) -> None:
        self.cub_root = Path(os.path.expanduser(str(root)))
        self.text_root = Path(os.path.expanduser(str(caption_root))) if caption_root else self.cub_root
        super().__init__(root=str(self.cub_root / "CUB_200_2011" / "images"),
                         caption_root=str(self.text_root / "text_c10"), **kwargs)  # fmt: skip
        self.download = download

    def _by_hand(self) -> str:
        return (f"download {CUB_URL} and unpack it into {self.cub_root} (so {self.root} exists), and Reed et al.'s "
                f"captions {CAPTIONS_URL} into {self.text_root} (so {self.caption_root} exists)")  # fmt: skip

    def prepare_data(self) -> None:
        wanted = [(self.root, CUB_URL, self.cub_root), (self.caption_root, CAPTIONS_URL, self.text_root)]
        for folder, url, into in wanted:
            if folder.is_dir():
                continue
            if not self.download:
                raise DataError(f"{folder} not found (data.download=false): {self._by_hand()}")
            fetch_into(url, into, None, folder.is_dir, self._by_hand())

    def scan(self) -> None:
        self.prepare_data()
        super().scan()
