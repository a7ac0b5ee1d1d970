"""Differentiable SAM 2 forward passes (volsam.finetune.sam2_forward) on a small random-init model.

Parity: with no gradients and the model in eval mode, ``frame_forward`` gives the logits of Sam2Engine's
prompted frame and ``clip_forward`` those of its propagated frames (the engine drives transformers'
inference session; these functions call the modules directly). Training: gradients reach every trainable
parameter of both recipes, and flow back through the memory into earlier frames.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.finetune.helpers import tiny_sam2_config
from volsam.core.errors import InputError, PromptError
from volsam.engines.base import FramePrompt
from volsam.engines.sam2.engine import Sam2Engine
from volsam.finetune.sam2_forward import UNUSED, clip_forward, frame_forward, trainable_groups
from volsam.propagation import FrameStack

S, T = 64, 5  # model input side (px) and clip length
BOX = (15.0, 20.0, 36.0, 40.0)  # x0, y0, x1, y1 in pixels of the S x S input
# Largest |logit difference| allowed against the engine (float32, CPU). Measured 2026-11-22: 0.0 on the
# prompted frame, <= 2e-8 on propagated frames (same operations, different order of a few sums).
PARITY_TOLERANCE = 1e-5
# Parameters whose gradient is exactly zero while the object is present on every frame: they only enter
# the forward multiplied by "object absent".
ABSENT_ONLY = ("no_object_pointer", "occlusion_spatial_embedding_parameter")
ZERO_INIT = ("memory_temporal_positional_encoding", "no_memory_embedding", *ABSENT_ONLY)


def small_sam2(side: int = S, seed: int = 0):
    """A random-init SAM 2.1-style ``Sam2VideoModel`` small enough for CPU tests: a 5-block Hiera (16..128
    channels), one memory-attention layer with a narrow feed-forward; SAM 2's 256-channel decoder and
    64-channel memory are kept (so object pointers are still split into 4 memory tokens); the same layout as
    :func:`_meta_small`. The object-score
    head's last bias is raised by 10 so the random model says "present" (otherwise every mask is gated to
    -1024 and a comparison proves nothing)."""
    from transformers import Sam2VideoModel

    config = tiny_sam2_config(side, heads=(1, 2, 4, 8))
    torch.manual_seed(seed)
    model = Sam2VideoModel(config).eval()
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias += 10.0
        # transformers initialises these to zero (trained checkpoints do not have zeros there); a zero layer
        # scale would cut the memory fuser off from every gradient
        for name in ZERO_INIT:
            getattr(model, name).normal_(std=0.02)
        for block in model.memory_encoder.memory_fuser.layers:
            block.scale.fill_(0.1)
    return model


def _frames(n: int = T, shift: int = 0) -> np.ndarray:
    """A bright disc drifting right over a noisy background, uint8 (n, S, S)."""
    rng = np.random.default_rng(shift)
    y, x = np.mgrid[:S, :S]
    out = [
        np.where((y - 30) ** 2 + (x - 25 - 2 * t - shift) ** 2 <= 10**2, 200, 70) + rng.normal(0, 8, (S, S))
        for t in range(n)
    ]
    return np.clip(out, 0, 255).astype(np.uint8)


def _pixels(engine: Sam2Engine, frames: np.ndarray) -> torch.Tensor:
    """uint8 (n, S, S) -> the engine's normalised model input (n, 3, S, S)."""
    return torch.stack([engine.pixels(f) for f in frames])


def _upsampled(logits: torch.Tensor) -> np.ndarray:
    """(1, 1, S/4, S/4) -> (S, S), as the engine resizes its logits to the frame."""
    return F.interpolate(logits, size=(S, S), mode="bilinear", align_corners=False)[0, 0].numpy()


@pytest.fixture(scope="module")
def model():
    return small_sam2()


@pytest.fixture(scope="module")
def engine(model):
    return Sam2Engine(net=model, keep_logits=True, precision="fp32")


def test_frame_forward_gives_the_engines_prompted_frame(model, engine):
    frames = _frames(1)
    stack = FrameStack(frames, 2, lambda f: f)
    pixels = engine.pixels(frames[0])[None]
    click = np.array([[27.0, 31.0]])
    cases = [  # a box (one mask, dynamic fallback in eval) and one click (three masks, best predicted IoU)
        (FramePrompt(box=BOX), {"boxes": torch.tensor([BOX])}, False),
        (
            FramePrompt(points=click, point_labels=np.array([1])),
            {"points": torch.tensor(click[None], dtype=torch.float32), "point_labels": torch.tensor([[1]])},
            True,
        ),
    ]
    for prompt, kwargs, multimask in cases:
        ours = list(engine.track(stack, {0: {1: prompt}}))[0].logits[0]
        with torch.no_grad():
            out = frame_forward(model, pixels, multimask=multimask, **kwargs)
        assert out.logits.shape == (1, 1, S // 4, S // 4) and out.iou.shape == out.object_score.shape == (1, 1)
        assert out.multi_logits.shape[1] == (3 if multimask else 1)
        assert 0.05 < (ours > 0).mean() < 0.95  # a real mask, not an empty or full one
        assert np.abs(_upsampled(out.logits) - ours).max() <= PARITY_TOLERANCE


def test_clip_forward_gives_the_engines_propagation(model, engine):
    frames = _frames()
    tracked = engine.track(FrameStack(frames, 2, lambda f: f), {0: {1: FramePrompt(box=BOX)}}, absent_patience=None)
    ours = {r.index: r.logits[0] for r in tracked}
    pixels = torch.stack([engine.pixels(f) for f in frames])[None]
    prompts = {0: {"boxes": torch.tensor([BOX])}}
    with torch.no_grad():
        # the engine streams (object-pointer encoding as for a video of >= 16 frames) and stores memories
        # in bfloat16 like every SAM 2 inference predictor; with both set the numbers are the engine's
        inference_like = clip_forward(model, pixels, prompts, num_frames=16, memory_dtype=torch.bfloat16)
        training_like = clip_forward(model, pixels, prompts)  # clip-length encoding, full-precision memory
    assert len(inference_like) == T
    for t in range(T):
        assert 0.05 < (ours[t] > 0).mean() < 0.95
        assert np.abs(_upsampled(inference_like[t].logits) - ours[t]).max() <= PARITY_TOLERANCE, t
        # the defaults differ from inference only by those two encodings: the masks stay (nearly) the same
        same = np.logical_and(_upsampled(training_like[t].logits) > 0, ours[t] > 0).sum()
        assert same / np.logical_or(_upsampled(training_like[t].logits) > 0, ours[t] > 0).sum() >= 0.99, t


def _meta_small(side: int = S, seed: int = 0):
    """Meta's SAM2Base (reference ``sam2``, test-only) in the layout of :func:`small_sam2`."""
    sam2 = pytest.importorskip("sam2", reason="the reference sam2==1.1.0 is installed by `make dev`")
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    grid = f"[{side // 16},{side // 16}]"
    trunk, attention = "++model.image_encoder.trunk.", "++model.memory_attention."
    overrides = [
        f"++model.image_size={side}",
        f"{trunk}embed_dim=16",
        f"{trunk}stages=[1,1,2,1]",
        f"{trunk}global_att_blocks=[3]",
        f"{trunk}window_pos_embed_bkg_spatial_size=[4,4]",
        f"{trunk}window_spec=[8,4,4,2]",
        "++model.image_encoder.neck.backbone_channel_list=[128,64,32,16]",
        f"{attention}num_layers=1",
        f"{attention}layer.dim_feedforward=256",
        f"{attention}layer.self_attention.feat_sizes={grid}",
        f"{attention}layer.cross_attention.feat_sizes={grid}",
    ]
    GlobalHydra.instance().clear()
    with initialize_config_module(sam2.__name__, version_base="1.2"):
        config = compose(config_name="configs/sam2.1/sam2.1_hiera_t.yaml", overrides=overrides)
    torch.manual_seed(seed)
    model = instantiate(config.model, _recursive_=True)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[2].bias += 10.0
    return model


def _without_dropout(model) -> None:
    """Training mode with dropout off (deterministic): what differs from eval mode is SAM 2's logic only."""
    model.train()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if hasattr(module, "dropout_p"):
            module.dropout_p = 0.0


def test_training_mode_is_metas_training_forward(engine):
    """Meta's SAM2Base stepped as its SAM2Train does (backbone on the whole clip, prompted frames first, then the
    others in order, each output stored as conditioning or not): the same mask logits on every frame. Covers a box
    (one mask), a mask prompt used as output (its object pointer from a single-mask decoder pass), a click (three
    masks, best predicted IoU), future conditioning frames' pointers (training only) and sigmoid memories."""
    from volsam.engines.checkpoints import load_strict
    from volsam.engines.sam2.convert import meta_to_hf

    meta = _meta_small()
    model = small_sam2()
    load_strict(model, meta_to_hf(meta.state_dict()), "Meta small")
    _without_dropout(meta)
    _without_dropout(model)
    pixels = _pixels(engine, _frames())
    mask = torch.zeros(1, 1, S, S)
    mask[..., 20:40, 16:36] = 1.0
    click, positive = torch.tensor([[[27.0, 31.0]]]), torch.tensor([[1]], dtype=torch.int32)
    prompts = {
        0: {"boxes": torch.tensor([BOX])},
        2: {"mask_inputs": mask},
        3: {"points": click, "point_labels": positive},
    }
    meta_inputs = {
        0: ({"point_coords": torch.tensor([BOX]).view(1, 2, 2), "point_labels": torch.tensor([[2, 3]])}, None),
        2: (None, mask),
        3: ({"point_coords": click, "point_labels": positive}, None),
    }
    with torch.no_grad():
        ours = clip_forward(model, pixels[None], prompts)
        _, feats, pos, sizes = meta._prepare_backbone_features(meta.forward_image(pixels))
        bank = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        reference = {}
        for t in [0, 2, 3, 1, 4]:
            points, mask_input = meta_inputs.get(t, (None, None))
            out = meta.track_step(
                frame_idx=t,
                is_init_cond_frame=t in meta_inputs,
                current_vision_feats=[x[:, t : t + 1] for x in feats],
                current_vision_pos_embeds=[x[:, t : t + 1] for x in pos],
                feat_sizes=sizes,
                point_inputs=points,
                mask_inputs=mask_input,
                output_dict=bank,
                num_frames=T,
            )
            bank["cond_frame_outputs" if t in meta_inputs else "non_cond_frame_outputs"][t] = out
            reference[t] = out["pred_masks"]
    for t in range(T):
        assert 0.05 < (reference[t] > 0).float().mean() < 0.95, t
        torch.testing.assert_close(ours[t].logits, reference[t], rtol=0, atol=PARITY_TOLERANCE)


def test_batches_give_what_single_samples_give(model, engine):
    """transformers' own memory attention reshapes batches wrongly; ours must not mix samples."""
    frames = [_frames(3, shift=0), _frames(3, shift=6)]
    pixels = torch.stack([_pixels(engine, clip) for clip in frames])
    boxes = torch.tensor([BOX, (20.0, 18.0, 44.0, 42.0)])
    points = torch.tensor([[[25.0, 30.0], [2.0, 2.0]], [[33.0, 30.0], [0.0, 0.0]]])
    labels = torch.tensor([[1, 0], [1, -1]])  # the second sample's second click is padding
    with torch.no_grad():
        both = clip_forward(model, pixels, {0: {"boxes": boxes}, 2: {"points": points, "point_labels": labels}})
        for b in range(2):
            prompts = {
                0: {"boxes": boxes[b : b + 1]},
                2: {"points": points[b : b + 1], "point_labels": labels[b : b + 1]},
            }
            alone = clip_forward(model, pixels[b : b + 1], prompts)
            for t in range(3):
                torch.testing.assert_close(both[t].logits[b : b + 1], alone[t].logits, rtol=1e-4, atol=1e-4)
                torch.testing.assert_close(both[t].object_score[b : b + 1], alone[t].object_score)
        single = frame_forward(model, pixels[:, 0], boxes=boxes)
        first = frame_forward(model, pixels[:1, 0], boxes=boxes[:1])
    torch.testing.assert_close(single.logits[:1], first.logits, rtol=1e-4, atol=1e-4)


def test_a_mask_prompt_is_the_frames_output(engine):
    model = small_sam2()
    pixels = _pixels(engine, _frames(3))[None].repeat(2, 1, 1, 1, 1)
    mask = torch.zeros(2, 1, S, S)
    mask[0, :, 20:40, 16:36] = 1.0  # sample 1 has an empty mask: the object is absent there
    with torch.no_grad():
        out = clip_forward(model, pixels, {1: {"mask_inputs": mask}})
    expected = F.interpolate(mask * 20 - 10, size=(S // 4, S // 4), mode="bilinear", antialias=True)
    torch.testing.assert_close(out[1].logits, expected)
    assert out[1].object_score.flatten().tolist() == [10.0, -10.0]
    assert out[1].iou.flatten().tolist() == [1.0, 1.0]
    assert [o.logits.shape for o in out] == [(2, 1, S // 4, S // 4)] * 3  # frame 0 is tracked from frame 1


def _grads(model) -> dict[str, torch.Tensor | None]:
    return {n: p.grad for n, p in model.named_parameters()}


def test_seed_2024_gradients_reach_the_image_encoder_and_decoder_only(engine):
    model = small_sam2()
    groups = trainable_groups(model, "seed-2024")
    model.train()
    pixels = _pixels(engine, _frames(2))
    boxed = frame_forward(model, pixels, boxes=torch.tensor([BOX, BOX]))
    clicked = frame_forward(model, pixels, points=torch.tensor([[[27.0, 31.0]]] * 2), multimask=True)
    loss = sum(o.multi_logits.sigmoid().mean() + o.iou.sum() + o.object_score.sum() for o in (boxed, clicked))
    loss.backward()
    trained = {id(p) for params in groups.values() for p in params}
    for name, p in model.named_parameters():
        if id(p) in trained:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None and not p.requires_grad, name
    assert not any(p.requires_grad for p in model.prompt_encoder.parameters())
    assert not any(p.requires_grad for p in model.memory_attention.parameters())


def test_medsam2_gradients_reach_every_trainable_parameter_through_the_memory(engine):
    model = small_sam2()
    groups = trainable_groups(model, "medsam2-2025")
    model.train()
    frames = _pixels(engine, _frames(4))[None]
    pixels = frames.clone().requires_grad_(True)
    mask = torch.zeros(1, 1, S, S)
    mask[..., 20:40, 16:36] = 1.0
    prompts = {0: {"boxes": torch.tensor([BOX])}, 2: {"mask_inputs": mask}}
    out = clip_forward(model, pixels, prompts)
    # the last frame alone: its loss reaches frame 0's pixels only through memories and object pointers
    (pixel_grad,) = torch.autograd.grad(out[-1].logits.sigmoid().mean(), pixels, retain_graph=True)
    assert pixel_grad[0, 0].abs().sum() > 0  # memories are not detached (as in Meta's training)
    assert pixel_grad[0, 1].abs().sum() > 0
    loss = sum(o.multi_logits.sigmoid().mean() + o.iou.sum() + o.object_score.sum() for o in out)
    loss.backward()
    named = dict(model.named_parameters())
    trained = {id(p) for params in groups.values() for p in params}
    assert trained == {id(p) for n, p in named.items() if n not in UNUSED}
    for name, p in named.items():
        if id(p) not in trained:
            continue
        assert p.grad is not None, name
        if name not in ABSENT_ONLY:
            assert p.grad.abs().sum() > 0, name


def test_recipe_groups():
    model = small_sam2()
    seed = trainable_groups(model, "seed-2024")
    assert sorted(seed) == ["decoder", "vision"]
    assert {id(p) for p in seed["vision"]} == {id(p) for p in model.vision_encoder.parameters()}
    assert {id(p) for p in seed["decoder"]} == {id(p) for p in model.mask_decoder.parameters()}
    whole = trainable_groups(model, "medsam2-2025")  # unfreezes what seed-2024 froze
    assert sorted(whole) == ["other", "vision"]
    assert not {id(p) for p in whole["vision"]} & {id(p) for p in whole["other"]}
    assert all(p.requires_grad for params in whole.values() for p in params)
    assert model.prompt_encoder.point_embed.weight.requires_grad
    assert not model.no_memory_positional_encoding.requires_grad  # never used by SAM 2.1's forward
    with pytest.raises(InputError, match="unknown SAM 2 fine-tuning recipe 'medsam-lite'"):
        trainable_groups(model, "medsam-lite")


def test_bad_inputs_are_refused_with_their_values(model):
    pixels = torch.zeros(1, 3, S, S)
    with pytest.raises(InputError, match=r"S = 64; got \(1, 3, 32, 32\)"):
        frame_forward(model, torch.zeros(1, 3, 32, 32), boxes=torch.tensor([BOX]))
    with pytest.raises(PromptError, match=r"boxes must be \(B, 4\) = \(1, 4\); got \(4,\)"):
        frame_forward(model, pixels, boxes=torch.tensor(BOX))
    with pytest.raises(PromptError, match=r"point_labels must be \(B, N\) = \(1, 2\); got \(1, 3\)"):
        frame_forward(model, pixels, points=torch.zeros(1, 2, 2), point_labels=torch.ones(1, 3))
    with pytest.raises(PromptError, match=r"mask_inputs must be .* got \(1, 1, 64, 64\)"):
        frame_forward(model, pixels, mask_inputs=torch.zeros(1, 1, S, S))
    clip = torch.zeros(1, 2, 3, S, S)
    with pytest.raises(PromptError, match="no prompted frame"):
        clip_forward(model, clip, {})
    with pytest.raises(PromptError, match=r"prompted frame 2 is not in 0..1"):
        clip_forward(model, clip, {2: {"boxes": torch.tensor([BOX])}})
    with pytest.raises(PromptError, match="not both"):
        clip_forward(model, clip, {0: {"boxes": torch.tensor([BOX]), "mask_inputs": torch.zeros(1, 1, S, S)}})
    with pytest.raises(PromptError, match=r"unknown prompt keys \['box'\]"):
        clip_forward(model, clip, {0: {"box": torch.tensor([BOX])}})
