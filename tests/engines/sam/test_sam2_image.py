"""``sam2-image`` (SAM 2 on single frames) against Meta's ``SAM2ImagePredictor`` (sam2 1.1.0) on random-init
SAM 2.1-tiny models, at 1024 and in MedSAM2's 512 layout.

``sam2.sam2_image_predictor`` imports ``sam2.utils.transforms``, which imports three torchvision transforms
(``ToTensor``, ``Resize``, ``Normalize``); torchvision cannot be installed here. :func:`image_predictor`
imports the predictor with a stand-in for those three that computes what torchvision computes on these
inputs (uint8 HWC -> float CHW / 255; bilinear resize with antialiasing; ``(x - mean) / std``) and removes the
stand-in and the two modules from ``sys.modules`` afterwards. Everything else, the coordinate transforms,
prompt encoding with the box as points 2 and 3, the decoder with its high-resolution features and
post-processing, is Meta's own code. Masks must agree wherever Meta's logit is farther than the logit
tolerance from 0 (float32 noise, as for SAM 1 in test_engine.py).
"""

from __future__ import annotations

import contextlib
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tests.engines.sam.frames import disc_frame, iou
from tests.engines.sam2.meta_reference import _size_overrides, meta_model, save_meta
from volsam.core.errors import InputError, PromptError
from volsam.engines.sam2.convert import load_meta_checkpoint
from volsam.engines.sam2.engine import Sam2Engine
from volsam.engines.sam2.image import Sam2ImageEngine, Sam2ImageFeatures, frame_pixels

LOGIT_TOLERANCE = 1e-4
_TORCHVISION = ("torchvision", "torchvision.transforms")


class _ToTensor:
    """torchvision's ``to_tensor`` of a uint8 HWC array: CHW float32 / 255."""

    def __call__(self, pic: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(pic.transpose(2, 0, 1))).float().div(255)


class _Resize(nn.Module):
    """torchvision's ``Resize(size)`` on a float tensor: bilinear, antialias=True (its default)."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__()
        self.size = [int(size[0]), int(size[1])]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(img.unsqueeze(0), size=self.size, mode="bilinear", align_corners=False, antialias=True)
        return out.squeeze(0)


class _Normalize(nn.Module):
    """torchvision's ``Normalize(mean, std)``: ``(x - mean) / std`` per channel."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.mean, dtype=img.dtype, device=img.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=img.dtype, device=img.device).view(-1, 1, 1)
        return (img - mean) / std


@contextlib.contextmanager
def _torchvision_stand_in():
    if any(name in sys.modules for name in _TORCHVISION):
        raise RuntimeError("a real or stand-in torchvision is already imported; refusing to shadow it")
    mods = {name: types.ModuleType(name) for name in _TORCHVISION}
    mods["torchvision.transforms"].ToTensor = _ToTensor  # type: ignore[attr-defined]
    mods["torchvision.transforms"].Resize = _Resize  # type: ignore[attr-defined]
    mods["torchvision.transforms"].Normalize = _Normalize  # type: ignore[attr-defined]
    mods["torchvision"].transforms = mods["torchvision.transforms"]  # type: ignore[attr-defined]
    loaded = ("sam2.utils.transforms", "sam2.sam2_image_predictor")
    sys.modules.update(mods)
    try:
        yield
    finally:
        for name in (*_TORCHVISION, *loaded):
            sys.modules.pop(name, None)


def image_predictor(checkpoint, image_size: int):
    """Meta's ``SAM2ImagePredictor(build_sam2(config, checkpoint))``, as Meta's README builds it (``build_sam2``
    adds the dynamic multimask fallback to the config). Its feature sizes are written for 1024 px; for
    MedSAM2's 512 they are set to the model's (side / 4, / 8, / 16)."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from sam2.build_sam import build_sam2

    GlobalHydra.instance().clear()
    with initialize_config_module("sam2", version_base="1.2"):
        model = build_sam2(
            "configs/sam2.1/sam2.1_hiera_t.yaml",
            str(checkpoint),
            device="cpu",
            hydra_overrides_extra=_size_overrides(image_size),
        )
    with _torchvision_stand_in():
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        predictor = SAM2ImagePredictor(model)
    predictor._bb_feat_sizes = [(image_size // s, image_size // s) for s in (4, 8, 16)]
    return predictor


def _meta_predict(predictor, prompt: dict, multimask: bool, mask_input: np.ndarray | None = None):
    box = prompt.get("box")
    logits, scores, low = predictor.predict(
        point_coords=prompt.get("points"),
        point_labels=prompt.get("point_labels"),
        box=None if box is None else np.array(box),
        mask_input=None if mask_input is None else mask_input[None],
        multimask_output=multimask,
        return_logits=True,
    )
    best = int(np.argmax(scores)) if multimask else 0
    return logits[best], float(scores[best]), low[best]


PROMPTS = {
    "box": {"box": (14.0, 12.0, 50.0, 44.0)},
    "click": {"points": np.array([[32.0, 28.0]]), "point_labels": np.array([1])},
    "box+clicks": {
        "box": (14.0, 12.0, 50.0, 44.0),
        "points": np.array([[32.0, 28.0], [16.0, 40.0]]),
        "point_labels": np.array([1, 0]),
    },
}


@pytest.fixture(scope="module")
def checkpoint_512(tmp_path_factory):
    """A random SAM 2.1-tiny in MedSAM2's 512 layout, saved as Meta does (the name says MedSAM2)."""
    return save_meta(meta_model(image_size=512, seed=7), tmp_path_factory.mktemp("sam2") / "MedSAM2_random.pt")


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")  # inside Meta's SAM2Transforms
@pytest.mark.parametrize("image_size", [1024, 512], ids=["sam2.1-tiny-1024", "medsam2-512"])
def test_matches_meta_image_predictor(tmp_path, checkpoint_512, image_size):
    checkpoint = checkpoint_512
    if image_size == 1024:
        checkpoint = save_meta(meta_model(seed=7), tmp_path / "sam2.1_hiera_tiny_random.pt")
    engine = Sam2ImageEngine(model=str(checkpoint))
    assert engine.side == image_size and not engine.capabilities.memory
    frame = disc_frame(56, 68, seed=8, centre=(28, 32))
    predictor = image_predictor(checkpoint, image_size)
    assert predictor.model.sam_mask_decoder.dynamic_multimask_via_stability
    rgb = np.repeat(frame[..., None], 3, axis=-1)
    with torch.inference_mode():
        predictor.set_image(rgb)
        assert torch.equal(predictor._transforms(rgb), frame_pixels(frame, image_size))  # model input
    emb = engine.encode(frame)[0]
    torch.testing.assert_close(emb.features.image, predictor._features["image_embed"][0], rtol=0, atol=1e-4)
    for ours_hr, meta_hr in zip(emb.features.high_res, predictor._features["high_res_feats"]):
        torch.testing.assert_close(ours_hr, meta_hr[0], rtol=0, atol=1e-4)
    for name, prompt in PROMPTS.items():
        multimask = "box" not in prompt and len(prompt["points"]) == 1
        ours = engine.predict(emb, **prompt)
        logits, score, low = _meta_predict(predictor, prompt, multimask)
        ours2 = engine.predict(emb, **prompt, mask_logits=ours.logits)
        logits2, _, low2 = _meta_predict(predictor, prompt, multimask, mask_input=low)
        for mine, (ref_logits, ref_low) in ((ours, (logits, low)), (ours2, (logits2, low2))):
            ref = ref_logits > 0
            assert 0 < ref.sum() < ref.size, name  # a real mask
            clear = np.abs(ref_logits) > LOGIT_TOLERANCE
            assert np.array_equal(mine.mask[clear], ref[clear]), name
            assert iou(mine.mask, ref) >= 0.999, name
            assert np.abs(mine.logits - ref_low).max() <= LOGIT_TOLERANCE, name
        assert abs(ours.score - score) < 1e-4, name


def test_pixels_are_the_trackers(checkpoint_512):
    frame = disc_frame(40, 52)
    rgb = np.stack([frame, frame[::-1], 255 - frame], axis=-1)
    net = load_meta_checkpoint(checkpoint_512)[0]
    tracker = Sam2Engine(net=net)
    for f in (frame, rgb):
        assert torch.equal(frame_pixels(f, 512), tracker.pixels(f))
    engine = Sam2ImageEngine(net=net)
    (emb,) = engine.encode(rgb[None])
    assert isinstance(emb.features, Sam2ImageFeatures) and emb.frame_shape == (40, 52)
    assert emb.features.nbytes == 4 * (256 * 32 * 32 + 32 * 128 * 128 + 64 * 64 * 64)
    with pytest.raises(PromptError, match="needs a box or at least one point"):
        engine.predict(emb)
    with pytest.raises(PromptError, match="outside"):
        engine.predict(emb, box=(60, 0, 70, 10))
    with pytest.raises(InputError, match="not produced by this sam2-image engine"):
        engine.predict(type(emb)(torch.zeros(256, 64, 64), (40, 52)), box=(1, 1, 9, 9))
    p = engine.predict(emb, box=(5, 5, 30, 30))
    assert p.mask.shape == (40, 52) and p.logits.shape == (128, 128) and np.abs(p.logits).max() <= 32
