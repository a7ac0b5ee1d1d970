"""RGB frames (endoscopy video) into the engines: SAM 2 takes them natively, LiteMedSAM's preprocessing too;
grey frames give bit-identical results to before (an RGB frame with three equal channels is the grey frame),
and the channels arrive in R, G, B order with their own ImageNet mean and std."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from volsam.core.errors import InputError
from volsam.engines import get as get_engine
from volsam.engines.base import FramePrompt
from volsam.engines.sam2.convert import build_model
from volsam.engines.sam2.engine import IMAGENET_MEAN, IMAGENET_STD, Sam2Engine
from volsam.engines.sam2.variants import SIZES, Variant


class Frames:
    """A minimal frame source over an in-memory array ``(n, H, W)`` or ``(n, H, W, 3)``."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self.frame_shape = array.shape[1:3]

    def __len__(self) -> int:
        return len(self.array)

    def frames(self, indices: list[int]) -> np.ndarray:
        return self.array[indices]


@pytest.fixture(scope="module")
def sam2():
    torch.manual_seed(0)
    net = build_model(Variant(SIZES["tiny"], "2.1", 128))
    with torch.no_grad():
        net.mask_decoder.pred_obj_score_head.proj_out.bias += 10.0
    return Sam2Engine(net=net, keep_logits=True)


def _grey(n: int = 4, h: int = 40, w: int = 52) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:h, :w]
    out = [np.where((y - 20) ** 2 + (x - 15 - 3 * t) ** 2 < 81, 210, 60) + rng.normal(0, 6, (h, w)) for t in range(n)]
    return np.clip(out, 0, 255).astype(np.uint8)


def test_sam2_pixels_of_equal_channels_are_the_grey_pixels_and_channels_keep_their_order(sam2):
    grey = _grey(1)[0]
    assert torch.equal(sam2.pixels(np.repeat(grey[..., None], 3, axis=2)), sam2.pixels(grey))
    rgb = np.zeros((128, 128, 3), np.uint8)  # the model's own size: no resizing
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 128, 0
    x = sam2.pixels(rgb)
    for c, value in enumerate((255, 128, 0)):
        expected = (value / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert torch.allclose(x[c], torch.full((128, 128), expected), atol=1e-6)


def test_sam2_tracking_rgb_with_equal_channels_is_bit_identical_to_grey(sam2):
    grey = _grey(3)
    prompts = {1: {1: FramePrompt(box=(5.0, 10.0, 30.0, 30.0))}}
    a = list(sam2.track(Frames(grey), prompts, absent_patience=None))
    b = list(sam2.track(Frames(np.repeat(grey[..., None], 3, axis=3)), prompts, absent_patience=None))
    assert [r.index for r in a] == [r.index for r in b] == [1, 2, 0]
    assert all(np.array_equal(ra.logits, rb.logits) for ra, rb in zip(a, b))
    # (real colour through tracking: tests/test_video_job.py feeds SAM 2 the RGB frames of an H.264 video)


def test_litemedsam_encodes_rgb_and_equal_channels_give_the_grey_embedding():
    lite = get_engine("medsam-lite", device="cpu")
    grey = _grey(1)
    rgb = np.repeat(grey[..., None], 3, axis=3)
    assert torch.equal(lite.preprocess(rgb), lite.preprocess(grey))
    (g,), (c,) = lite.encode(grey), lite.encode(rgb)
    assert torch.equal(g.features, c.features) and c.frame_shape == (40, 52)
    tinted = lite.preprocess(np.stack([grey, grey // 2, 255 - grey], axis=-1))
    assert tinted.shape == (1, 3, 256, 256) and not torch.equal(tinted[:, 0], tinted[:, 2])
    with pytest.raises(InputError, match=r"\(n, H, W\) or \(n, H, W, 3\)"):
        lite.encode(np.zeros((1, 8, 8, 4), np.uint8))
