"""Which candidate should re-propagation follow once a person picked one on the key slice?

LiteMedSAM proposes four masks per prompt (its single-mask output first, then three multimask outputs). On
lesion cases in real anatomy (``volsam.data.lesions``, cropped) the simulated user draws the tight box on the
middle slice and picks the candidate with the best Dice *on that slice only*; then a plain box walk (each next
slice prompted with the bounding box of the previous slice's mask, both directions, stop at an empty mask)
carries the object through the volume, choosing on each neighbour:

* ``first``: the first candidate (what volsam does today), also on the key slice (the baseline);
* ``key+first``: the picked candidate on the key slice, the first one on the neighbours;
* ``key+same``: the picked candidate's rank on every slice;
* ``key+similar``: on each slice the candidate most like (IoU) the previous slice's mask.

This walk is deliberately plain (no stop rules, no focus window): it compares rules, it is not volsam's walk.
Then the same with volsam itself: a Session segments from the box (``session:first``), the simulated user
chooses the candidate with the best Dice on the key slice (``Session.choose_candidate``, one choice), carried
to the other slices by each rule of ``volsam.session.candidates.CARRY_RULES`` (``session:picked:<rule>``):
``local`` (a correction's re-propagation, one way with an early stop), ``walk`` (volsam's walk from the
chosen mask, both ways), ``same`` / ``similar`` (both ways, each slice the chosen rank / the candidate most
like the previous slice's mask).

Prints one JSON line per case and a summary per lesion kind (mean 3D Dice).

Measured 2026-12-06 (2-core CPU under load; cases dark-00, ring-00, ring-01, small-00, flat-00, bright-00;
mean 3D Dice): key slice alone, first candidate 0.835 -> picked 0.915. Plain walk: first 0.479, key+first
0.574, key+same 0.655, key+similar 0.628. volsam with the earlier one-way carry: session:first 0.815, picked
0.815. With the carry rules (``--session-only --cache /tmp/volsam-embcache --cases ring-00``): first 0.754,
picked local 0.759, walk 0.890, same 0.742, similar 0.742. The 6-case run of the rules did not finish under
the load; ``benchmarks/bench_interactive.py`` measured local and walk on 12 cases (results/bench-interactive.json).

    .venv/bin/python benchmarks/bench_candidates.py --per-kind 2
    .venv/bin/python benchmarks/bench_candidates.py --cases ring-00 flat-00
    .venv/bin/python benchmarks/bench_candidates.py --session-only --cache /tmp/volsam-embcache --cases ring-00
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from volsam.data.lesion_render import KINDS
from volsam.data.lesions import lesion_case
from volsam.engines import get as get_engine
from volsam.preprocess import fit_normalizer

RULES = (
    "first",
    "key+first",
    "key+same",
    "key+similar",
    "session:first",
    *(f"session:picked:{rule}" for rule in ("local", "walk", "same", "similar")),
)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = int((a | b).sum())
    return 0.0 if union == 0 else int((a & b).sum()) / union


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def run_case(engine, name: str, plain: bool = True) -> dict:
    case = lesion_case(name, crop=True)
    volume, truth = case.image, case.label.array > 0
    frames = fit_normalizer(volume, "MR").apply(volume.array)
    b = case.middle_box
    key = b.slice
    embeddings: dict[int, object] = {}

    def candidates(k: int, box) -> list:
        if k not in embeddings:
            embeddings[k] = engine.encode(frames[k : k + 1])[0]
        return engine.predict_candidates(embeddings[k], box=box)

    first = candidates(key, (b.u0, b.v0, b.u1, b.v1))
    scores = [dice(c.mask, truth[key]) for c in first]
    picked = int(np.argmax(scores))
    out = {"case": name, "kind": name.split("-")[0], "key_dice": [round(s, 3) for s in scores], "picked": picked}
    for rule in RULES[:4] if plain else ():
        rank = 0 if rule == "first" else picked
        masks = np.zeros_like(truth)
        masks[key] = first[rank].mask
        for step in (1, -1):
            prev, k = masks[key], key + step
            while 0 <= k < len(frames) and prev.any():
                cands = candidates(k, bbox(prev))
                if rule in ("first", "key+first"):
                    choice = cands[0]
                elif rule == "key+same":
                    choice = cands[rank]
                else:
                    choice = max(cands, key=lambda c: iou(c.mask, prev))
                masks[k] = choice.mask
                prev, k = choice.mask, k + step
        out[rule] = round(dice(masks, truth), 4)
    out.update(session_case(engine, case))
    return out


def session_case(engine, case) -> dict:
    """volsam's own walk, then one choice of candidate on the key slice (the best by Dice there), carried to
    the other slices by each rule of ``CARRY_RULES`` in turn (each choice undone before the next)."""
    from volsam.session import Session
    from volsam.session.candidates import CARRY_RULES

    truth, b = case.label.array > 0, case.middle_box
    s = Session(case.image, engine=engine, modality="MR")
    obj = s.add_object()
    s.add_box(obj, b.slice, (b.u0, b.v0, b.u1, b.v1))
    out = {"session:first": round(dice(s.mask(obj), truth), 4)}
    masks = s.candidates(obj, b.slice)  # in the object's focus window, as next_candidate computes them
    rank = int(np.argmax([dice(m[b.slice], truth[b.slice]) for m in masks]))
    for rule in CARRY_RULES:
        s.candidate_carry = rule
        s.choose_candidate(obj, b.slice, rank)
        out[f"session:picked:{rule}"] = round(dice(s.mask(obj), truth), 4)
        s.undo()
    out["session:rank"] = rank
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-kind", type=int, default=2)
    parser.add_argument("--cases", nargs="*", help="case names instead of --per-kind (e.g. ring-00)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--session-only", action="store_true", help="only volsam's session rows (no plain walk)")
    parser.add_argument("--cache", type=Path, default=None, help="keep embeddings in this folder (MemoEngine)")
    args = parser.parse_args()
    engine = get_engine("medsam-lite", device=args.device)
    if args.cache is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_interactive import CandidateMemo

        engine = CandidateMemo(engine, args.cache)
    rules = RULES[4:] if args.session_only else RULES
    rows, t0 = [], time.perf_counter()
    names = args.cases or [f"{kind}-{index:02d}" for kind in KINDS for index in range(args.per_kind)]
    for name in names:
        row = run_case(engine, name, plain=not args.session_only)
        rows.append(row)
        print(json.dumps(row), flush=True)
    summary = {}
    for kind in (*KINDS, "all"):
        mine = [r for r in rows if kind in ("all", r["kind"])]
        if not mine:
            continue
        summary[kind] = {rule: round(float(np.mean([r[rule] for r in mine])), 4) for rule in rules}
        summary[kind]["n"] = len(mine)
    print(json.dumps({"summary": summary, "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
