"""Which parts of LiteMedSAM can run in bf16 without moving masks: per part, per-slice mask Dice against fp32
and the speed ratio, on the lesion set (real MNI152 anatomy) and on CT slices.

Each variant runs one part in bf16 and everything else as the engine's fp32 (torch backend):

* ``enc-stem`` (patch embedding + the MBConv stage 0: the 128x128 / 64x64 convolutions), ``enc-stage1`` ..
  ``enc-stage3`` (the attention stages), ``enc-neck``: that part of the TinyViT image encoder under
  ``torch.autocast(bfloat16)`` (its output cast back to fp32);
* ``encoder``: the whole image encoder under autocast (the engine's ``precision="bf16"``);
* ``prompt-encoder``, ``mask-decoder``: that module under autocast;
* ``all``: image encoder, prompt encoder and mask decoder under autocast;
* ``ov-f32`` / ``ov-bf16``: the image encoder on OpenVINO with ``INFERENCE_PRECISION_HINT`` f32 / bf16 (the
  cached conversion of :mod:`volsam.engines.backends.openvino`; skipped without openvino).

Masks: per slice, boxes around the object (its tight box grown by 1 px, and by 10 % of its longer side: the
walk's proposals), each predicted by every variant; Dice against fp32's mask of the same box (1 when both
are empty). Sets:

* ``lesions``: the builtin lesion cases (``volsam.data.lesions``, full MNI152 frames, MR normalisation),
  ``--lesion-slices`` slices per case spread over the lesion;
* ``ct``: axial slices of a real CT volume (``--ct``; default the brain CT atlas in the ``totalsegmentator``
  wheel: ``pip download --no-deps totalsegmentator==2.18.0`` and unzip
  ``totalsegmentator/resources/ct_brain_atlas_1mm.nii.gz``), brain window, with a hyperdense
  (haematoma-like, ~65 HU) and a hypodense (infarct-like, ~18 HU) textured ellipse inserted per slice
  (seeded); boxes around the inserted objects.

Speed: the encoder runs part by part, fp32 first (each part's input kept), then each one-part variant from
that part's fp32 input, so every part is timed in fp32 and in bf16 on the same slice (``part_ratio``: that
part alone; ``encoder_ratio``: the whole encoder with that part in bf16); ``encoder``, ``all`` and the
OpenVINO variants are timed whole. Each variant's decoder runs ``--decoder-reps`` times (fastest kept);
ratios are summed seconds over fp32's in the same run (``slice_ratio`` = encoder + decoder). Lesion and CT
slices alternate and the JSON is rewritten after every slice, so a run cut short keeps both sets. The
machine may be shared: only ratios from one run mean something.

    .venv/bin/python benchmarks/bench_precision_parts.py --out results/bench-precision-parts.json \\
        --ct /path/to/ct_brain_atlas_1mm.nii.gz [--lesion-slices 2] [--ct-slices 16] [--variants ...]

A part passes when its min per-slice Dice is >= 0.99 on both sets (``passes`` in the JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from volsam.data.lesions import lesion_case, lesion_case_names
from volsam.engines.base import SliceEmbedding
from volsam.engines.medsam_lite.engine import MedSAMLiteEngine
from volsam.engines.medsam_lite.model import INPUT_SIZE
from volsam.engines.medsam_lite.tinyvit import TinyViT, to_image
from volsam.preprocess import WINDOWS, fit_normalizer
from volsam.propagation.frames import expand_box

log = logging.getLogger("bench_precision_parts")

ROOT = Path(__file__).resolve().parents[1]
PASS_DICE = 0.99
Box = tuple[float, float, float, float]

#: variant -> the parts it runs in bf16 (dotted module paths under the LiteMedSAM net), or an OpenVINO hint
TORCH_PARTS: dict[str, tuple[str, ...]] = {
    "enc-stem": ("image_encoder.patch_embed", "image_encoder.layers.0"),
    "enc-stage1": ("image_encoder.layers.1",),
    "enc-stage2": ("image_encoder.layers.2",),
    "enc-stage3": ("image_encoder.layers.3",),
    "enc-neck": ("image_encoder.neck",),
    "encoder": ("image_encoder",),
    "prompt-encoder": ("prompt_encoder",),
    "mask-decoder": ("mask_decoder",),
    "all": ("image_encoder", "prompt_encoder", "mask_decoder"),
}
OPENVINO = {"ov-f32": "f32", "ov-bf16": "bf16"}
VARIANTS = ("fp32", *TORCH_PARTS, *OPENVINO)


def _to_float(out: object) -> object:
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, tuple):
        return tuple(_to_float(o) for o in out)
    return out


@contextlib.contextmanager
def bf16_parts(net: torch.nn.Module, paths: tuple[str, ...]) -> Iterator[None]:
    """Within the block each module at ``paths`` runs under CPU bf16 autocast, its outputs cast to fp32."""
    patched = []
    for path in paths:
        module = net.get_submodule(path)
        plain = module.forward

        def forward(*args: object, _plain: Callable = plain, **kwargs: object) -> object:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = _plain(*args, **kwargs)
            return _to_float(out)

        module.forward = forward  # an instance attribute over the class's forward
        patched.append(module)
    try:
        yield
    finally:
        for module in patched:
            del module.forward


# ---------------------------------------------------------------- the two sets
def box_around(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def proposals(mask: np.ndarray) -> list[Box]:
    """The object's tight box grown by 1 px, and by 1 px + 10 % of its longer side."""
    box = box_around(mask)
    side = max(box[2] - box[0] + 1, box[3] - box[1] + 1)
    return [expand_box(box, 1.0 + r * side, mask.shape) for r in (0.0, 0.1)]


def lesion_slices(per_case: int, names: list[str]) -> list[tuple[str, np.ndarray, list[Box]]]:
    """``per_case`` slices per lesion case (spread over the lesion's slices), MR-normalised uint8."""
    out = []
    for name in names:
        case = lesion_case(name)
        label = case.label.array > 0
        ks = np.nonzero(label.any(axis=(1, 2)))[0]
        picks = sorted({int(ks[int(round(q * (len(ks) - 1)))]) for q in np.linspace(0.25, 0.75, per_case)})
        norm = fit_normalizer(case.image, "MR")
        frames = np.asarray(norm.apply(case.image.array[picks]))
        for k, frame in zip(picks, frames):
            out.append((f"{name}/k{k}", frame, proposals(label[k])))
    return out


def default_ct() -> Path | None:
    try:
        dist = importlib.metadata.distribution("totalsegmentator")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file("totalsegmentator/resources/ct_brain_atlas_1mm.nii.gz")))
    return path if path.exists() else None


def _ellipse(shape: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float], angle: float):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    y, x = yy - centre[0], xx - centre[1]
    c, s = np.cos(angle), np.sin(angle)
    return ((c * x + s * y) / radii[1]) ** 2 + ((-s * x + c * y) / radii[0]) ** 2 <= 1


def ct_slices(path: Path, count: int, seed: int = 0) -> list[tuple[str, np.ndarray, list[Box]]]:
    """``count`` axial slices of the CT at ``path`` (HU) with two inserted lesions each, brain window."""
    hu = sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32)  # (k, j, i)
    brain = (hu > 20) & (hu < 60)
    area = brain.sum(axis=(1, 2))
    ks = np.nonzero(area > 0.5 * area.max())[0]
    picks = [int(k) for k in np.linspace(ks.min(), ks.max(), count).round()]
    level, width = WINDOWS["brain"]
    rng = np.random.default_rng(seed)
    out = []
    for k in picks:
        image = hu[k].copy()
        inside = np.argwhere(brain[k])
        boxes = []
        for value, sd, (rmin, rmax) in ((65.0, 5.0, (5, 14)), (18.0, 4.0, (7, 18))):
            for _ in range(50):  # a centre whose ellipse lies in the brain
                cy, cx = inside[rng.integers(len(inside))]
                radii = (float(rng.uniform(rmin, rmax)), float(rng.uniform(rmin, rmax)))
                obj = _ellipse(image.shape, (cy, cx), radii, float(rng.uniform(0, np.pi)))
                if brain[k][obj].mean() > 0.95:
                    break
            image[obj] = value + rng.normal(0, sd, int(obj.sum()))
            boxes.extend(proposals(obj))
        lo = level - width / 2
        frame = np.clip((image - lo) / width * 255.0, 0, 255).round().astype(np.uint8)
        out.append((f"ct/k{k}", frame, boxes))
    return out


# ---------------------------------------------------------------- running the variants
def encoder_stages(encoder: TinyViT) -> list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]]:
    """The image encoder as its parts in order (``TinyViT.forward`` split up): running them one after the
    other on the preprocessed input gives the embedding."""

    def stem(x: torch.Tensor) -> torch.Tensor:
        if encoder.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return encoder.layers[0](encoder.patch_embed(x))

    def neck(x: torch.Tensor) -> torch.Tensor:
        return encoder.neck(to_image(x, encoder.out_side, encoder.out_side)).contiguous()

    stages = [(f"enc-stage{i}", encoder.layers[i]) for i in range(1, len(encoder.layers))]
    return [("enc-stem", stem), *stages, ("enc-neck", neck)]


def in_bf16(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return fn(x).float()


class Runner:
    """Encodes and predicts one slice per variant, timing each part.

    The encoder runs part by part: fp32 once, keeping each part's input; a variant with one part in bf16
    starts from that part's fp32 input, so only that part is timed in both precisions (``part_s``).
    """

    def __init__(self, engine: MedSAMLiteEngine, variants: list[str], decoder_reps: int = 2):
        self.engine = engine
        self.decoder_reps = max(1, decoder_reps)
        self.variants = variants
        self.stages = encoder_stages(engine.net.image_encoder)
        self.ov: dict[str, object] = {}
        wanted = [v for v in variants if v in OPENVINO]
        if wanted:
            self._openvino(wanted)

    def _openvino(self, wanted: list[str]) -> None:
        try:
            import openvino as ov

            from volsam.engines.backends.openvino import CONFIG, OpenVinoModule
            from volsam.engines.medsam_lite import fused_ops
        except ImportError:
            log.warning("openvino is not installed: %s skipped", ", ".join(wanted))
            self.variants = [v for v in self.variants if v not in OPENVINO]
            return
        module = OpenVinoModule(
            self.engine.net.image_encoder,
            (1, 3, INPUT_SIZE, INPUT_SIZE),
            name="litemedsam-encoder",
            trace_context=fused_ops.plain_ops,
        )
        core = ov.Core()
        model = core.read_model(str(module.path))
        for name in wanted:
            compiled = core.compile_model(model, "CPU", {**CONFIG, "INFERENCE_PRECISION_HINT": OPENVINO[name]})
            self.ov[name] = compiled.create_infer_request()
            log.info("OpenVINO %s: %s", name, compiled.get_property("INFERENCE_PRECISION_HINT"))

    def encode_all(self, frame: np.ndarray) -> tuple[dict[str, torch.Tensor], dict[str, float], dict[str, float]]:
        """Embeddings ``(256, 64, 64)`` per variant that changes the encoder (and fp32), the encoder seconds
        of each, and per part its fp32 and bf16 seconds (``part_s``: ``"enc-stage2/fp32"`` ...)."""
        x = self.engine.preprocess(frame[None])
        feats, seconds, part_s = {}, {}, {}
        acts = [x]
        with torch.inference_mode():
            for name, fn in self.stages:
                t0 = time.perf_counter()
                acts.append(fn(acts[-1]))
                part_s[f"{name}/fp32"] = time.perf_counter() - t0
            feats["fp32"] = acts[-1]
            seconds["fp32"] = sum(part_s.values())
            for i, (name, fn) in enumerate(self.stages):
                if name not in self.variants:
                    continue
                t0 = time.perf_counter()
                h = in_bf16(fn, acts[i])
                part_s[f"{name}/bf16"] = time.perf_counter() - t0
                for _, later in self.stages[i + 1 :]:
                    h = later(h)
                feats[name] = h
                seconds[name] = seconds["fp32"] - part_s[f"{name}/fp32"] + part_s[f"{name}/bf16"]
            if "encoder" in self.variants or "all" in self.variants:
                t0 = time.perf_counter()
                h = x
                for _, fn in self.stages:
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        h = fn(h)
                feats["encoder"] = feats["all"] = h.float()
                seconds["encoder"] = seconds["all"] = time.perf_counter() - t0
            for name, request in self.ov.items():
                t0 = time.perf_counter()
                request.infer({0: np.ascontiguousarray(x.numpy())})
                feats[name] = torch.from_numpy(request.get_output_tensor(0).data.copy())
                seconds[name] = time.perf_counter() - t0
        return {k: v[0].float() for k, v in feats.items()}, seconds, part_s

    def predict(self, variant: str, emb: SliceEmbedding, boxes: list[Box]) -> tuple[list[np.ndarray], float]:
        paths = tuple(p for p in TORCH_PARTS.get(variant, ()) if not p.startswith("image_encoder"))
        best, masks = float("inf"), []
        with bf16_parts(self.engine.net, paths):
            for _ in range(self.decoder_reps):
                t0 = time.perf_counter()
                preds = self.engine.predict_boxes(emb, boxes)
                best = min(best, time.perf_counter() - t0)
                masks = [p.mask for p in preds]
        return masks, best


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else float(2 * np.logical_and(a, b).sum() / total)


class Tally:
    """Per set and variant: per-box Dice against fp32, summed seconds, the worst box."""

    def __init__(self, variants: list[str]):
        self.variants = variants
        self.data: dict[str, dict[str, dict]] = {}
        self.part_s: dict[str, dict[str, float]] = {}

    def add(self, label: str, name: str, frame: np.ndarray, boxes: list[Box], runner: Runner) -> None:
        stats = self.data.setdefault(
            label, {v: {"dice": [], "encoder_s": 0.0, "decoder_s": 0.0, "worst": None} for v in self.variants}
        )
        parts = self.part_s.setdefault(label, {})
        feats, enc_s, part_s = runner.encode_all(frame)
        for key, value in part_s.items():
            parts[key] = parts.get(key, 0.0) + value
        masks = {}
        for v in self.variants:
            emb = SliceEmbedding(features=feats.get(v, feats["fp32"]), frame_shape=frame.shape[:2])
            masks[v], dec_s = runner.predict(v, emb, boxes)
            stats[v]["encoder_s"] += enc_s.get(v, enc_s["fp32"])
            stats[v]["decoder_s"] += dec_s
        for v in self.variants:
            for b, (want, got) in enumerate(zip(masks["fp32"], masks[v], strict=True)):
                d = dice(want, got)
                stats[v]["dice"].append(d)
                if stats[v]["worst"] is None or d < stats[v]["worst"][0]:
                    stats[v]["worst"] = (d, f"{name}/box{b}", int(want.sum()), int(got.sum()))

    def summary(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for label, stats in self.data.items():
            ref = stats["fp32"]
            out[label] = {}
            for v, s in stats.items():
                d = np.asarray(s["dice"])
                worst = s["worst"]
                out[label][v] = {
                    "boxes": len(d),
                    "min_dice": float(d.min()),
                    "mean_dice": float(d.mean()),
                    "boxes_below_0.99": int((d < PASS_DICE).sum()),
                    "worst": {"dice": worst[0], "where": worst[1], "fp32_px": worst[2], "px": worst[3]},
                    "encoder_s": s["encoder_s"],
                    "decoder_s": s["decoder_s"],
                    "encoder_ratio": s["encoder_s"] / ref["encoder_s"],
                    "decoder_ratio": s["decoder_s"] / ref["decoder_s"],
                    "slice_ratio": (s["encoder_s"] + s["decoder_s"]) / (ref["encoder_s"] + ref["decoder_s"]),
                }
        return out


def interleaved(*sets: list) -> Iterator:
    """Items of the lists taken in turn (a, b, a, b, ... then the rest): a cut-short run covers every set."""
    for n in range(max(len(s) for s in sets)):
        for s in sets:
            if n < len(s):
                yield s[n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "bench-precision-parts.json")
    ap.add_argument("--ct", type=Path, default=None, help="a CT volume in HU (default: totalsegmentator's atlas)")
    ap.add_argument("--lesion-slices", type=int, default=2, help="slices per lesion case")
    ap.add_argument("--cases", default=None, help="comma-separated lesion cases (default: all 20 builtin ones)")
    ap.add_argument("--ct-slices", type=int, default=16)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    ap.add_argument("--decoder-reps", type=int, default=2, help="decoder calls per variant and slice (fastest kept)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ct = args.ct or default_ct()
    if ct is None or not Path(ct).exists():
        ap.error("no CT volume: give --ct (see the module docstring for the totalsegmentator atlas)")
    variants = ["fp32"] + [v for v in args.variants if v != "fp32"]
    names = args.cases.split(",") if args.cases else [n for n in lesion_case_names() if n.count("-") == 1]
    if args.threads:
        torch.set_num_threads(args.threads)
    engine = MedSAMLiteEngine(device="cpu", precision="fp32", backend="torch")
    runner = Runner(engine, variants, args.decoder_reps)
    tally = Tally(runner.variants)
    work = interleaved(
        [("lesions", *s) for s in lesion_slices(args.lesion_slices, names)],
        [("ct", *s) for s in ct_slices(Path(ct), args.ct_slices)],
    )
    for n, (label, name, frame, boxes) in enumerate(work, 1):
        tally.add(label, name, frame, boxes, runner)
        write(args.out, report(tally, ct, runner))  # after every slice: a run cut short keeps what it measured
        log.info("%d: %s %s", n, label, name)
    out = report(tally, ct, runner)
    for v, p in out["parts"].items():
        dice_min, dice_mean = p["min_dice"], p["mean_dice"]
        print(
            f"{v:16s} min Dice " + " ".join(f"{k} {x:.4f}" for k, x in dice_min.items())
            + "  mean " + " / ".join(f"{x:.4f}" for x in dice_mean.values())
            + f"  encoder x{p['encoder_ratio']:.2f} decoder x{p['decoder_ratio']:.2f} slice x{p['slice_ratio']:.2f}"
            + ("  PASS" if p["passes"] else "  fail"),
            flush=True,
        )  # fmt: skip
    write(args.out, out)
    print(f"wrote {args.out}")
    return 0


def report(tally: Tally, ct: Path, runner: Runner) -> dict:
    sets = tally.summary()
    parts = {}
    for v in runner.variants:
        per = {name: s[v] for name, s in sets.items()}
        parts[v] = {
            "min_dice": {name: p["min_dice"] for name, p in per.items()},
            "mean_dice": {name: p["mean_dice"] for name, p in per.items()},
            "encoder_ratio": statistics.fmean(p["encoder_ratio"] for p in per.values()),
            "decoder_ratio": statistics.fmean(p["decoder_ratio"] for p in per.values()),
            "slice_ratio": statistics.fmean(p["slice_ratio"] for p in per.values()),
            "passes": len(per) == 2 and all(p["min_dice"] >= PASS_DICE for p in per.values()),
        }
        stage = [
            tally.part_s[s].get(f"{v}/bf16", 0.0) / tally.part_s[s][f"{v}/fp32"]
            for s in tally.part_s
            if f"{v}/fp32" in tally.part_s[s]
        ]
        if stage and all(stage):
            parts[v]["part_ratio"] = statistics.fmean(stage)  # that part alone, bf16 over fp32
    return {
        "benchmark": "LiteMedSAM parts in bf16: per-box mask Dice against fp32 and speed ratios (same run)",
        "command": " ".join(sys.argv),
        "pass_rule": f"min per-box Dice >= {PASS_DICE} on every set (lesions and ct)",
        "ct_volume": str(ct),
        "parts": parts,
        "sets": sets,
        "part_seconds": tally.part_s,
        "machine": {
            "threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "load_average": list(os.getloadavg()),
            "note": "shared 2-core machine: compare only ratios from the same run",
        },
    }


def write(path: Path, out: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
