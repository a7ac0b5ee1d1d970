"""MedSAM's preprocessing and post-processing, checked against the equations of its inference script
(bowang-lab/MedSAM ``MedSAM_Inference.py``), written out below with the script's own calls: scikit-image's
``transform.resize`` for the image, Meta's modules (segment-anything 1.0, loaded from its files) for the model.

The script works at 1024 px; the random test model takes ``side`` px, so 1024 reads ``side`` here.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from tests.engines.sam.frames import disc_frame, iou
from tests.engines.sam.meta_reference import meta_sam
from volsam.engines.sam.convert import from_meta_state
from volsam.engines.sam.engine import MedSAMEngine
from volsam.engines.sam.preprocess import medsam_normalise, medsam_resize
from volsam.io.samples import mni152_path

transform = pytest.importorskip("skimage.transform", reason="scikit-image (MedSAM's resize) is a dev dependency")
LOGIT_TOLERANCE = 1e-4  # float32 noise between transformers' SamModel and Meta's modules (as for SAM)


def script_image(img_np: np.ndarray, side: int) -> np.ndarray:
    """``MedSAM_Inference.py``'s image preprocessing, with ``side`` for 1024: float64 (side, side, 3) in [0, 1]."""
    img_3c = np.repeat(img_np[:, :, None], 3, axis=-1) if len(img_np.shape) == 2 else img_np
    img_1024 = transform.resize(img_3c, (side, side), order=3, preserve_range=True, anti_aliasing=True).astype(np.uint8)
    return (img_1024 - img_1024.min()) / np.clip(img_1024.max() - img_1024.min(), a_min=1e-8, a_max=None)


@torch.no_grad()
def script_inference(meta, img_np: np.ndarray, box: tuple[int, int, int, int], side: int):
    """The script end to end: (input tensor, 256x256 low-res logits, probability map (H, W), mask (H, W))."""
    img_3c = np.repeat(img_np[:, :, None], 3, axis=-1) if len(img_np.shape) == 2 else img_np
    H, W, _ = img_3c.shape
    img_1024_tensor = torch.tensor(script_image(img_np, side)).float().permute(2, 0, 1).unsqueeze(0)
    box_1024 = np.array([box]) / np.array([W, H, W, H]) * side
    image_embedding = meta.image_encoder(img_1024_tensor)
    # medsam_inference(medsam_model, img_embed, box_1024, H, W)
    box_torch = torch.as_tensor(box_1024, dtype=torch.float)[:, None, :]
    sparse_embeddings, dense_embeddings = meta.prompt_encoder(points=None, boxes=box_torch, masks=None)
    low_res_logits, _ = meta.mask_decoder(
        image_embeddings=image_embedding,
        image_pe=meta.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse_embeddings,
        dense_prompt_embeddings=dense_embeddings,
        multimask_output=False,
    )
    low_res_pred = torch.sigmoid(low_res_logits)
    low_res_pred = F.interpolate(low_res_pred, size=(H, W), mode="bilinear", align_corners=False)
    prob = low_res_pred.squeeze().cpu().numpy()
    return img_1024_tensor, low_res_logits[0, 0].numpy(), prob, (prob > 0.5).astype(np.uint8)


@functools.cache
def _frames() -> dict[str, tuple[np.ndarray, int]]:
    """Frames and the side they are resized to: upsampled, MNI152 anatomy at 1024, shrunk along one axis, RGB,
    and noise with a flat patch at 1024 (values that land on integers, where rounding shows)."""
    t1 = sitk.GetArrayFromImage(sitk.ReadImage(str(mni152_path("t1"))))[95].astype(np.uint8)  # 233 x 197
    rng = np.random.default_rng(2)
    noise = rng.integers(0, 256, (256, 256), dtype=np.uint8)
    noise[50:100, 50:150] = 100
    return {
        "disc-60x72": (disc_frame(60, 72, seed=1), 256),
        "mni152-t1": (t1, 1024),
        "shrunk-300x200": (disc_frame(300, 200, seed=3), 256),
        "rgb": (rng.integers(0, 256, (50, 70, 3), dtype=np.uint8), 128),
        "noise-flat-256": (noise, 512),
    }


@pytest.mark.parametrize("name", list(_frames()))
def test_exact_resize_is_the_scripts(name):
    frame, side = _frames()[name]
    img_3c = np.repeat(frame[:, :, None], 3, axis=-1) if frame.ndim == 2 else frame
    expected = transform.resize(img_3c, (side, side), order=3, preserve_range=True, anti_aliasing=True)
    assert np.array_equal(medsam_resize(frame, side, exact=True), expected.astype(np.uint8))
    normalised = medsam_normalise(medsam_resize(frame, side, exact=True))
    assert np.array_equal(normalised, torch.tensor(script_image(frame, side)).float().numpy())


@pytest.mark.parametrize("name", list(_frames()))
def test_default_resize_is_within_one_grey_level(name):
    """Per-channel resizing: the same equation, rounded differently before the truncation to uint8. Measured
    2026-12-07: identical on four of these frames; 1 grey level on 0.012% of the values of the noise frame
    with a flat 100-valued patch."""
    frame, side = _frames()[name]
    exact = medsam_resize(frame, side, exact=True).astype(int)
    fast = medsam_resize(frame, side).astype(int)
    fast = fast if fast.ndim == 3 else np.repeat(fast[..., None], 3, axis=-1)
    diff = np.abs(fast - exact)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001, (diff.max(), (diff > 0).mean())


@pytest.fixture(scope="module")
def model():
    meta = meta_sam(seed=5)
    return meta, from_meta_state(meta.state_dict())[0]


@pytest.mark.parametrize("shape", [(60, 72), (90, 50)], ids=["wide", "tall"])
def test_engine_is_the_script(model, shape):
    """Same weights, same frame, same box: the model input is bit for bit the script's, the logits agree to
    float32 noise, and the mask (sigmoid > 0.5 after resizing) is the script's."""
    meta, net = model
    frame = disc_frame(*shape, seed=6, centre=(28, 25))
    box = (8, 10, 40, 45)
    script_input, script_logits, prob, script_mask = script_inference(meta, frame, box, 256)
    engine = MedSAMEngine(net=net, exact_resize=True)
    assert torch.equal(engine.preprocess(frame[None]), script_input)
    ours = engine.predict(engine.encode(frame)[0], box=box)
    assert np.abs(ours.logits - script_logits).max() <= LOGIT_TOLERANCE
    assert 0 < script_mask.sum() < script_mask.size
    clear = np.abs(prob - 0.5) > LOGIT_TOLERANCE  # away from float noise at the threshold
    assert np.array_equal(ours.mask[clear], script_mask[clear].astype(bool))
    assert iou(ours.mask, script_mask.astype(bool)) >= 0.999
    fast = MedSAMEngine(net=net)  # the default resize: masks stay the script's
    assert iou(fast.predict(fast.encode(frame)[0], box=box).mask, script_mask.astype(bool)) >= 0.99


def test_medsam_geometry_and_defaults(model):
    _, net = model
    engine = MedSAMEngine(net=net)
    assert engine.name == "medsam" and not engine.multimask  # MedSAM decodes its single mask, as its script
    assert engine.resized_shape((60, 72)) == (256, 256)  # stretched to the square
    assert np.allclose(engine.to_model(np.array([[72.0, 60.0]]), (60, 72)), [[256.0, 256.0]])
    click = engine.predict(engine.encode(disc_frame(60, 72))[0], points=np.array([[30.0, 30.0]]))
    assert click.mask.shape == (60, 72)
