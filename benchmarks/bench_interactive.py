"""Interactive segmentation on the lesion set: one box on the middle slice, then simulated clicks
(volsam.bench.clicks, the CVPR 2025 rule) through a volsam Session; 3D Dice per step and seconds per
correction.

Beside the clicks, the step "choose the best candidate on the key slice" (one interaction): after the box,
the simulated user picks, among LiteMedSAM's candidate masks for the box on the middle slice, the one with
the best Dice on that slice only (``Session.choose_candidate``); the 3D Dice after it is reported for each
rule that carries the choice to the other slices (``--candidate-rules``; see
``volsam.session.candidates.CARRY_RULES``), then the choice is undone and the clicks start from the box.
The summary gives each step's mean per lesion kind.

    .venv/bin/python benchmarks/bench_interactive.py [--clicks 5] [--full] [--kinds dark,ring]
        [--cases ring-00] [--cache /tmp/volsam-embcache] [--ceiling] [--out results/bench-interactive.json]
    .venv/bin/python benchmarks/bench_interactive.py --merge a.json b.json --out results/bench-interactive.json

Frame embeddings are kept on disk (``--cache``) so that a second run encodes nothing; correction times
are then the session's own work (prediction, propagation) and are reported as such (``cached``).

``--ceiling`` also reports what the model gives with the true box (1 pixel margin) on every slice of the
lesion: the best its box answers can do, a reference for what clicks can be expected to reach.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_propagation import MemoEngine  # noqa: E402

from volsam.bench.clicks import next_click  # noqa: E402
from volsam.data.lesions import lesion_cases  # noqa: E402
from volsam.engines import get as get_engine  # noqa: E402
from volsam.metrics import dice  # noqa: E402
from volsam.preprocess import fit_normalizer  # noqa: E402
from volsam.propagation import FrameStack, mask_box  # noqa: E402
from volsam.session import Session  # noqa: E402
from volsam.session.candidates import CARRY_RULES  # noqa: E402


class CandidateMemo(MemoEngine):
    """MemoEngine (embeddings kept on disk) that also hands on the model's candidate masks."""

    def predict_candidates(self, embedding, **kwargs):
        return self.inner.predict_candidates(embedding, **kwargs)


def choose_best_candidate(session: Session, obj: int, truth: np.ndarray, key: int, rules: list[str]) -> dict:
    """The simulated user's one choice of candidate on slice ``key`` (the best Dice on that slice only),
    carried by each of ``rules`` in turn (each undone after): key-slice Dice of every candidate, the rank
    picked, and per rule the 3D Dice and the seconds."""
    before = session.mask(obj)
    masks = session.candidates(obj, key)
    key_dice = [dice(m[key], truth[key]) for m in masks]
    rank = int(np.argmax(key_dice))
    out: dict = {"rank": rank, "key_dice": key_dice, "dice": {}, "seconds": {}}
    for rule in rules:
        session.candidate_carry = rule
        t0 = time.perf_counter()
        session.choose_candidate(obj, key, rank)
        out["seconds"][rule] = time.perf_counter() - t0
        out["dice"][rule] = dice(session.mask(obj), truth)
        session.undo()
    if not np.array_equal(session.mask(obj), before):
        raise RuntimeError("undoing the candidate choice did not restore the box's result")
    return out


def run_case(case, engine, clicks: int, click_prompts: bool = False, candidate_rules: list[str] | None = None) -> dict:
    truth = case.label.array > 0
    session = Session(case.image, engine=engine, modality="MR", click_prompts=click_prompts)
    obj = session.add_object(name=case.name)
    b = case.middle_box
    t0 = time.perf_counter()
    session.add_box(obj, b.slice, (b.u0, b.v0, b.u1, b.v1))
    steps = [dice(session.mask(obj), truth)]
    seconds = [time.perf_counter() - t0]
    candidate = choose_best_candidate(session, obj, truth, b.slice, candidate_rules) if candidate_rules else None
    first_frame = []
    kinds = []
    for _ in range(clicks):
        click = next_click(session.mask(obj), truth)  # the challenge measures depth in voxels
        if click is None:
            break
        t0 = time.perf_counter()
        change = session.add_point(obj, click.ijk(), positive=click.positive)
        seconds.append(time.perf_counter() - t0)
        if change.first_frame_seconds is not None:
            first_frame.append(change.first_frame_seconds)
        steps.append(dice(session.mask(obj), truth))
        kinds.append("+" if click.positive else "-")
    return {
        "case": case.name,
        "kind": case.kind,
        "dice": steps,
        "clicks": kinds,
        "seconds": seconds,
        "first_frame_seconds": first_frame,
        "candidate": candidate,
    }


def true_box_dice(case, engine) -> float:
    """3D Dice of the model's answers to the true box, grown by 1 pixel, on every slice of the lesion."""
    truth = case.label.array > 0
    stack = FrameStack(case.image.array, 2, fit_normalizer(case.image, modality="MR").apply)
    out = np.zeros_like(truth)
    for s in np.flatnonzero(truth.any(axis=(1, 2))):
        x0, y0, x1, y1 = mask_box(truth[s])
        h, w = truth[s].shape
        box = (max(0.0, x0 - 1), max(0.0, y0 - 1), min(w - 1.0, x1 + 1), min(h - 1.0, y1 + 1))
        out[s] = engine.predict(engine.encode(stack.frames([int(s)]))[0], box=box).mask
    return dice(out, truth)


def _step_means(rows: list[dict]) -> list[float]:
    """Mean Dice after the box and after each click (a case that ran out of clicks keeps its last value)."""
    n_steps = max(len(r["dice"]) for r in rows)
    return [statistics.fmean(r["dice"][min(s, len(r["dice"]) - 1)] for r in rows) for s in range(n_steps)]


def summarise(rows: list[dict]) -> dict:
    """The run's summary: mean Dice per step (all cases and per lesion kind), the candidate step per rule,
    the worst drops, the seconds."""
    corrections = [s for r in rows for s in r["seconds"][1:]]
    first = [s for r in rows for s in r["first_frame_seconds"]]
    summary: dict = {
        "n_cases": len(rows),
        "mean_dice_per_step": _step_means(rows),
        "worst_final_minus_box": min(r["dice"][-1] - r["dice"][0] for r in rows),
        "worst_any_step_minus_box": min(min(r["dice"][1:], default=r["dice"][0]) - r["dice"][0] for r in rows),
        "seconds_per_correction_median": float(np.median(corrections)) if corrections else None,
        "seconds_to_corrected_slice_median": float(np.median(first)) if first else None,
    }
    if all("true_box_dice" in r for r in rows):
        summary["mean_true_box_dice"] = statistics.fmean(r["true_box_dice"] for r in rows)
    per_kind: dict = {}
    for kind in sorted({r["kind"] for r in rows}) + ["all"]:
        mine = [r for r in rows if kind in ("all", r["kind"])]
        entry: dict = {"n": len(mine), "mean_dice_per_step": _step_means(mine)}
        picked = [r["candidate"] for r in mine if r.get("candidate")]
        if picked:
            entry["candidate_key_slice_first"] = statistics.fmean(c["key_dice"][0] for c in picked)
            entry["candidate_key_slice_picked"] = statistics.fmean(c["key_dice"][c["rank"]] for c in picked)
            entry["candidate_3d"] = {
                rule: statistics.fmean(c["dice"][rule] for c in picked) for rule in picked[0]["dice"]
            }
        if all("true_box_dice" in r for r in mine):
            entry["true_box_dice"] = statistics.fmean(r["true_box_dice"] for r in mine)
        per_kind[kind] = entry
    summary["per_kind"] = per_kind
    return summary


def report(summary: dict) -> None:
    print("mean Dice per step: " + " ".join(f"{m:.3f}" for m in summary["mean_dice_per_step"]))
    if "mean_true_box_dice" in summary:
        print(f"the model with the true box on every slice: mean Dice {summary['mean_true_box_dice']:.3f}")
    for kind, entry in summary["per_kind"].items():
        steps = " ".join(f"{m:.3f}" for m in entry["mean_dice_per_step"])
        line = f"{kind:8s} n={entry['n']:2d}  box+clicks {steps}"
        if "candidate_3d" in entry:
            line += (
                f"  key slice {entry['candidate_key_slice_first']:.3f}->{entry['candidate_key_slice_picked']:.3f}"
                "  pick 3D " + " ".join(f"{rule} {d:.3f}" for rule, d in entry["candidate_3d"].items())
            )
        print(line)
    print(
        f"worst final - box: {summary['worst_final_minus_box']:+.3f}; "
        f"worst step - box: {summary['worst_any_step_minus_box']:+.3f}"
    )
    print(
        f"correction: {summary['seconds_per_correction_median']} s (median), corrected slice shown after "
        f"{summary['seconds_to_corrected_slice_median']} s"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=5)
    ap.add_argument("--full", action="store_true", help="full MNI152 volumes instead of cropped cases")
    ap.add_argument("--kinds", default="")
    ap.add_argument("--cases", default="")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/volsam-embcache"))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--ceiling", action="store_true", help="also the model's Dice with the true box on every slice")
    ap.add_argument(
        "--click-prompts", action="store_true", help="corrections also give the clicks to the model (default: box only)"
    )
    ap.add_argument(
        "--candidate-rules",
        default=",".join(CARRY_RULES),
        help="carry rules of the candidate step, comma-separated ('' skips the step)",
    )
    ap.add_argument("--merge", nargs="*", type=Path, help="merge the cases of these --out files (no run)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.merge:
        runs = [json.loads(p.read_text()) for p in args.merge]
        rows = [r for run in runs for r in run["cases"]]
        command = " + ".join(run["command"] for run in runs)
    else:
        command = " ".join(sys.argv)
        rows = run_cases(args)
    summary = summarise(rows)
    report(summary)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"command": command, "summary": summary, "cases": rows}, indent=2))
    return 0


def run_cases(args: argparse.Namespace) -> list[dict]:
    kinds = [k for k in args.kinds.split(",") if k]
    names = [n for n in args.cases.split(",") if n]
    rules = [r for r in args.candidate_rules.split(",") if r]
    engine = CandidateMemo(get_engine("medsam-lite", device="cpu"), args.cache)
    rows = []
    for case in lesion_cases(crop=not args.full):
        if (kinds and case.kind not in kinds) or (names and case.name not in names):
            continue
        row = run_case(case, engine, args.clicks, click_prompts=args.click_prompts, candidate_rules=rules)
        if args.ceiling:
            row["true_box_dice"] = true_box_dice(case, engine)
        rows.append(row)
        if args.out:  # after every case: a run cut short keeps what it measured
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps({"command": " ".join(sys.argv), "partial": True, "cases": rows}, indent=2))
        steps = " ".join(f"{d:.3f}" for d in row["dice"])
        pick = row["candidate"]
        print(
            f"{case.name:18s} {steps}  clicks {''.join(row['clicks'])}  "
            f"{statistics.fmean(row['seconds'][1:]) if len(row['seconds']) > 1 else 0:.2f} s/correction"
            + (f"  true box {row['true_box_dice']:.3f}" if args.ceiling else "")
            + (
                f"  pick {pick['rank']}: " + " ".join(f"{rule} {d:.3f}" for rule, d in pick["dice"].items())
                if pick
                else ""
            ),
            flush=True,
        )
    return rows


if __name__ == "__main__":
    sys.exit(main())
