"""The SAM engine against Meta's ``SamPredictor`` (segment-anything 1.0, loaded from its files: see
meta_reference.py) on random-initialised models: same weights (converted), same frames, same prompts.

Meta's predictor does its own preprocessing (PIL resize, ImageNet normalisation, padding) and
post-processing, so these tests compare the whole path: the model input (bit for bit), the image embedding,
the 256x256 logits (within ``LOGIT_TOLERANCE``), the predicted IoU and the masks. The two implementations
add the same numbers in different orders (transformers' attention vs Meta's), so logits differ by float32
noise (~2e-5); a pixel whose reference logit is closer to the threshold than that can flip. Masks must
therefore be identical at every pixel where Meta's full-resolution logit is farther than
``LOGIT_TOLERANCE`` from 0 (IoU 1.0 there), and the plain IoU at least ``MIN_IOU``.
Most run a small image encoder (64 wide, 2 blocks, 256 px input) for speed; one runs ViT-B's real layout
(768 wide, 12 blocks, 12 heads, global attention in blocks 2, 5, 8, 11, 14-token windows) at 512 px.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.engines.sam.frames import disc_frame, iou
from tests.engines.sam.meta_reference import meta_predictor, meta_sam, save_meta
from volsam.core.errors import EngineError, InputError, ModelNotFound, PromptError, SettingsError
from volsam.engines import backends
from volsam.engines.base import SliceEmbedding
from volsam.engines.sam.convert import from_meta_state
from volsam.engines.sam.engine import SamEngine

# Largest |logit difference| allowed between volsam and Meta (float32 on CPU). Measured 2026-12-07: 2.0e-5 on
# the small encoder, 4e-5 on the ViT-B layout; masks identical.
LOGIT_TOLERANCE = 1e-4
MIN_IOU = 0.999
needs_openvino = pytest.mark.skipif(not backends.openvino_available(), reason="openvino is not installed")
BACKENDS = ["torch", pytest.param("openvino", marks=needs_openvino)]

# inside every test frame (the smallest is 50 wide, 60 high): Meta does not clip boxes, volsam does
PROMPTS = {
    "box": {"box": (12.0, 10.0, 46.0, 47.0)},
    "click": {"points": np.array([[30.0, 30.0]]), "point_labels": np.array([1])},
    "clicks": {"points": np.array([[30.0, 30.0], [5.0, 5.0]]), "point_labels": np.array([1, 0])},
    "box+clicks": {
        "box": (12.0, 10.0, 46.0, 47.0),
        "points": np.array([[30.0, 30.0], [15.0, 42.0]]),
        "point_labels": np.array([1, 0]),
    },
}


@pytest.fixture(scope="module")
def small():
    """A random Meta SAM with a small image encoder, and the engine on the same weights."""
    meta = meta_sam(seed=1)
    return meta, SamEngine(net=from_meta_state(meta.state_dict())[0])


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


def _mask_agreement(ours: np.ndarray, meta_logits: np.ndarray) -> tuple[float, float]:
    """(IoU where |Meta's logit| > LOGIT_TOLERANCE, plain IoU) of our mask against Meta's (logits > 0)."""
    meta = meta_logits > 0  # Meta's mask_threshold
    clear = np.abs(meta_logits) > LOGIT_TOLERANCE
    assert 0 < meta.sum() < meta.size  # the comparison is about a real mask, not an empty or full one
    return iou(ours & clear, meta & clear), iou(ours, meta)


def _compare(meta, engine, frame: np.ndarray, prompts: dict[str, dict]) -> dict[str, tuple[float, float, float]]:
    """(mask IoU off the noise band, plain mask IoU, max |logit difference|) per prompt, after checking the
    model input and the embedding."""
    predictor = meta_predictor(meta)
    rgb = frame if frame.ndim == 3 else np.repeat(frame[..., None], 3, axis=-1)
    predictor.set_image(rgb)
    with torch.inference_mode():
        transformed = torch.as_tensor(predictor.transform.apply_image(rgb)).permute(2, 0, 1)[None]
        meta_input = meta.preprocess(transformed)
    assert torch.equal(engine.preprocess(frame[None]), meta_input)  # model input, bit for bit
    emb = engine.encode(frame[None])[0]  # (1, H, W) or (1, H, W, 3)
    torch.testing.assert_close(emb.features, predictor.features[0], rtol=0, atol=1e-4)
    out = {}
    for name, prompt in prompts.items():
        ours = engine.predict(emb, **prompt)
        multimask = "box" not in prompt and len(prompt["points"]) == 1
        logits, score, low = _meta_predict(predictor, prompt, multimask)
        assert ours.mask.shape == frame.shape[:2] and ours.logits.shape == low.shape
        assert abs(ours.score - score) < 1e-4
        out[name] = (*_mask_agreement(ours.mask, logits), float(np.abs(ours.logits - low).max()))
        # feeding the logits back as a mask prompt (how SAM refines): same again
        ours2 = engine.predict(emb, **prompt, mask_logits=ours.logits)
        logits2, _, low2 = _meta_predict(predictor, prompt, multimask, mask_input=low)
        out[name + "+mask"] = (*_mask_agreement(ours2.mask, logits2), float(np.abs(ours2.logits - low2).max()))
    return out


def _check(results: dict[str, tuple[float, float, float]]) -> None:
    for name, (clear_iou, plain_iou, worst) in results.items():
        assert clear_iou == 1.0 and plain_iou >= MIN_IOU, (name, clear_iou, plain_iou)
        assert worst <= LOGIT_TOLERANCE, (name, worst)


@pytest.mark.parametrize("shape", [(60, 72), (90, 50), (64, 64)], ids=["wide", "tall", "square"])
def test_parity_with_meta_predictor(small, shape):
    meta, engine = small
    frame = disc_frame(*shape, seed=2, centre=(30, 30))
    _check(_compare(meta, engine, frame, PROMPTS))


def test_parity_on_rgb_frames(small):
    meta, engine = small
    grey = disc_frame(60, 72, seed=3, centre=(30, 30))
    rgb = np.stack([grey, np.roll(grey, 3, axis=1), 255 - grey], axis=-1)
    _check(_compare(meta, engine, rgb, {"box": PROMPTS["box"]}))


@needs_openvino
def test_parity_small_encoder_on_openvino(small):
    """The image encoder converted to OpenVINO fp32 (same weights): Meta's masks and logits as with torch."""
    meta, reference = small
    engine = SamEngine(net=reference.net, backend="openvino")
    assert engine.backend == "openvino" and engine._encoder is not None
    frame = disc_frame(60, 72, seed=2, centre=(30, 30))
    _check(_compare(meta, engine, frame, PROMPTS))


@pytest.mark.parametrize("backend", BACKENDS)
def test_parity_vit_b_layout(tmp_path, backend):
    """ViT-B's real image encoder (random weights) at 512 px, loaded from a saved Meta ``.pth`` file, its
    image encoder in torch and on OpenVINO fp32."""
    meta = meta_sam(768, 12, 12, (2, 5, 8, 11), image_size=512, seed=4)
    path = save_meta(meta, tmp_path / "sam_vit_b_random.pth")
    engine = SamEngine(model=str(path), backend=backend)
    assert engine.backend == backend  # no silent fallback: the backend under test is the one that ran
    assert engine.side == 512 and len(engine.net.vision_encoder.layers) == 12
    frame = disc_frame(120, 150, seed=5, centre=(60, 70))
    prompts = {"box": {"box": (40.0, 25.0, 100.0, 95.0)}, "click": {"points": np.array([[70.0, 60.0]])}}
    prompts["click"]["point_labels"] = np.array([1])
    _check(_compare(meta, engine, frame, prompts))


def test_lone_click_keeps_the_best_of_three_masks(small):
    _, engine = small
    emb = engine.encode(disc_frame(60, 72))[0]
    prompt = PROMPTS["click"]
    chosen = engine.predict(emb, **prompt)
    prompts = engine._prompts(emb, None, prompt["points"], prompt["point_labels"], None)
    logits, scores = engine.decode(emb.features, prompts, multimask=True)
    assert logits.shape[2] == 3 and chosen.score == pytest.approx(float(scores.max()))
    single = SamEngine(net=engine.net, single_point_multimask=False).predict(emb, **prompt)
    single_logits, single_score = engine.decode(emb.features, prompts, multimask=False)
    assert single.score == pytest.approx(float(single_score[0, 0, 0]))


def test_batches_and_shapes(small):
    _, engine = small
    frames = np.stack([disc_frame(40, 56, seed=s) for s in range(3)])
    one_by_one = [engine.encode(f)[0].features for f in frames]
    batched = SamEngine(net=engine.net, batch_size=2).encode(frames)
    assert len(batched) == 3 and all(e.frame_shape == (40, 56) for e in batched)
    for a, b in zip(one_by_one, batched):
        torch.testing.assert_close(a, b.features, rtol=0, atol=1e-5)
    p = engine.predict(batched[0], box=(5, 5, 30, 30))
    assert p.mask.dtype == bool and p.mask.shape == (40, 56)
    assert p.logits.dtype == np.float32 and p.logits.shape == (engine.low_res, engine.low_res)
    assert engine.capabilities.input_size == 256 and not engine.capabilities.memory


def test_refusals(small):
    _, engine = small
    emb = engine.encode(disc_frame(40, 56))[0]
    with pytest.raises(PromptError, match="needs a box or at least one point"):
        engine.predict(emb)
    with pytest.raises(PromptError, match="outside the 56x40"):
        engine.predict(emb, box=(60, 0, 70, 10))
    with pytest.raises(PromptError, match="x0 <= x1"):
        engine.predict(emb, box=(30, 0, 10, 10))
    with pytest.raises(PromptError, match="outside"):
        engine.predict(emb, points=np.array([[-1.0, 3.0]]))
    with pytest.raises(PromptError, match="0 \\(background\\) or 1"):
        engine.predict(emb, points=np.array([[1.0, 3.0]]), point_labels=np.array([2]))
    with pytest.raises(PromptError, match="mask_logits must be finite 64x64"):
        engine.predict(emb, box=(1, 1, 9, 9), mask_logits=np.zeros((256, 256)))
    with pytest.raises(InputError, match="not produced by this sam engine"):
        engine.predict(SliceEmbedding(torch.zeros(256, 64, 64), (40, 56)), box=(1, 1, 9, 9))
    with pytest.raises(InputError, match="uint8"):
        engine.encode(np.zeros((2, 8, 8), dtype=np.float32))
    with pytest.raises(InputError, match="non-empty"):
        engine.encode(np.zeros((2, 8, 8, 4), dtype=np.uint8))


def test_weights_refusals(tmp_path, monkeypatch):
    monkeypatch.setenv("VOLSAM_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelNotFound, match="'sam-vit-b' is not installed .*volsam models convert"):
        SamEngine()  # the default model, not there
    with pytest.raises(SettingsError, match="runs on engine 'medsam', not 'sam'"):
        SamEngine(model="medsam-vit-b")
    with pytest.raises(ModelNotFound, match="not in the local Hugging Face cache"):
        SamEngine(model="someone/sam-like")
    with pytest.raises(ModelNotFound, match="no file, folder, known name"):
        SamEngine(model=str(tmp_path / "missing.pth"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="no config.json"):
        SamEngine(model=str(tmp_path / "empty"))
    torch.save({"model": {"sam_mask_decoder.iou_token.weight": torch.zeros(1, 256)}}, tmp_path / "sam2.pt")
    with pytest.raises(ModelNotFound, match="looks like SAM 2"):
        SamEngine(model=str(tmp_path / "sam2.pt"))


def test_precision_option(small):
    _, engine = small
    assert engine.precision == "fp32"  # auto = fp32 everywhere until bf16 is measured on a device
    bf16 = SamEngine(net=engine.net, precision="bf16")
    emb = bf16.encode(disc_frame(40, 56))[0]
    assert emb.features.dtype == torch.float32  # embeddings are kept in fp32 whatever the encoder ran in
    assert bf16.predict(emb, box=(5, 5, 30, 30)).mask.shape == (40, 56)
    with pytest.raises(EngineError, match="unknown precision 'fp16'"):
        SamEngine(net=engine.net, precision="fp16")
    with pytest.raises(EngineError, match="batch_size must be a positive integer"):
        SamEngine(net=engine.net, batch_size=0)
