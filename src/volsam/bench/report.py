"""``volsam report``: result folders of ``volsam bench`` side by side, as Markdown, CSV and PNG plots.

Writes into the output folder:

``report.md``
    per run and target: cases, failures, DSC and NSD (mean ± sd, median), AUC for interactive protocols,
    seconds per object; the same per modality; for ``cvpr25`` runs, the challenge's numbers per image
    (mean over images of DSC AUC, NSD AUC, final DSC, final NSD, DSC per step, inference time); the plots.
``cases.csv``
    one row per run, case and target: final DSC/NSD, AUCs, seconds, DSC and NSD of every step.
``summary.csv``
    the per-target table.
``challenge.csv``
    ``cvpr25`` runs: the per-image table (one row per run).
``dice_per_step.png``
    mean DSC after each interaction, one line per run (interactive protocols).
``dice_boxplot.png``
    final DSC per target, one box per run.
``engine_modality.csv``, ``engine_modality.png``
    ``box2d`` runs: the MedSAM2 paper's 2D comparison, modality x engine (SAM, MedSAM, LiteMedSAM, SAM 2 sizes,
    MedSAM2), mean DSC and NSD per cell; runs recorded with ``--random-weights`` are labelled as such (their
    numbers say that the path runs, nothing about the engine).

Records are merged across shard files; where a (case, target) appears more than once (a failed case run
again) the last result counts. Failed objects are counted, not averaged in. ``cvpr25``'s image lines
(``"scope": "image"``) feed the per-image table only; the per-target tables use its per-class lines.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from volsam.bench.protocols import CHALLENGE_SECONDS_PER_CLASS
from volsam.bench.runner import read_results
from volsam.core.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class Run:
    """One result folder: its name (the folder's), ``run.json`` and its merged records."""

    name: str
    meta: dict
    records: list[dict]

    @property
    def results(self) -> list[dict]:
        """Successful per-object records (not cvpr25's image lines)."""
        return [r for r in self.records if "error" not in r and r.get("scope") != "image"]

    @property
    def images(self) -> list[dict]:
        """cvpr25's successful per-image records."""
        return [r for r in self.records if "error" not in r and r.get("scope") == "image"]

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.records if "error" in r]


def load_run(folder: str | Path) -> Run:
    """Read a ``volsam bench`` output folder; raises :class:`InputError` when it is not one."""
    folder = Path(folder)
    meta_path = folder / "run.json"
    if not meta_path.is_file():
        raise InputError(f"{folder}: not a volsam bench result folder (no run.json)")
    try:
        meta = json.loads(meta_path.read_text())
    except ValueError as exc:
        raise InputError(f"{meta_path}: not valid JSON ({exc})") from exc
    latest: dict[tuple, dict] = {}
    for record in read_results(folder):
        key = (record.get("case"), record.get("target"))
        if "error" in record and key in latest and "error" not in latest[key]:
            continue  # a success is not undone by a later failure of the same object
        latest[key] = record
    return Run(folder.name, meta, list(latest.values()))


def _unique_names(runs: Sequence[Run]) -> None:
    seen: dict[str, int] = defaultdict(int)
    for run in runs:
        seen[run.name] += 1
        if seen[run.name] > 1:
            run.name = f"{run.name}-{seen[run.name]}"


def _stats(values: Sequence[float]) -> tuple[float, float, float]:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    if not vals:
        return (math.nan, math.nan, math.nan)
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return statistics.fmean(vals), sd, statistics.median(vals)


def _fmt(mean: float, sd: float) -> str:
    return "–" if math.isnan(mean) else f"{mean:.3f} ± {sd:.3f}"


def _group_rows(run: Run, key: str) -> list[dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in run.results:
        groups[str(r.get(key))].append(r)
    failed: dict[str, int] = defaultdict(int)
    for r in run.failures:
        failed[str(r.get(key))] += 1
    rows = []
    for name in sorted(set(groups) | set(failed)):
        rs = groups.get(name, [])
        dsc, nsd = _stats([r["final_dice"] for r in rs]), _stats([r["final_nsd"] for r in rs])
        auc = _stats([r.get("auc_dice") for r in rs])
        secs = _stats([r["seconds"] for r in rs])
        rows.append(
            {
                "run": run.name,
                key: name,
                "n": len(rs),
                "failed": failed.get(name, 0),
                "dice_mean": dsc[0],
                "dice_sd": dsc[1],
                "dice_median": dsc[2],
                "nsd_mean": nsd[0],
                "nsd_sd": nsd[1],
                "nsd_median": nsd[2],
                "auc_dice_mean": auc[0],
                "seconds_mean": secs[0],
            }
        )
    return rows


def _markdown_table(rows: list[dict], key: str, steps: bool) -> str:
    head = f"| run | {key} | n | failed | DSC | DSC median | NSD | NSD median |"
    head += " AUC (DSC) |" if steps else ""
    head += " s / object |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        line = (
            f"| {r['run']} | {r[key]} | {r['n']} | {r['failed']} | {_fmt(r['dice_mean'], r['dice_sd'])} | "
            f"{r['dice_median']:.3f} | {_fmt(r['nsd_mean'], r['nsd_sd'])} | {r['nsd_median']:.3f} |"
        )
        if steps:
            line += f" {r['auc_dice_mean']:.3f} |"  # NaN (shown as –) for one-step protocols
        line += f" {r['seconds_mean']:.1f} |"
        lines.append(line.replace("nan", "–"))
    return "\n".join(lines)


def _challenge_rows(run: Run) -> list[dict]:
    """The CVPR 2025 table of a cvpr25 run: means over its images, as the challenge ranks them."""
    if run.meta.get("protocol") != "cvpr25" or not any(r.get("scope") == "image" for r in run.records):
        return []  # cvpr25 runs written before image lines existed have no per-image numbers
    images = run.images
    n_steps = max((len(r["steps"]) for r in images), default=0)
    per_step = [_stats([r["steps"][s]["dice"] for r in images if len(r["steps"]) > s])[0] for s in range(n_steps)]
    return [
        {
            "run": run.name,
            "images": len(images),
            "failed": sum(1 for r in run.failures if r.get("scope") == "image"),
            "dsc_auc": _stats([r["auc_dice"] for r in images])[0],
            "nsd_auc": _stats([r["auc_nsd"] for r in images])[0],
            "dsc_final": _stats([r["final_dice"] for r in images])[0],
            "nsd_final": _stats([r["final_nsd"] for r in images])[0],
            "dsc_per_step": " ".join(f"{v:.3f}" for v in per_step),
            "seconds_mean": _stats([r["seconds"] for r in images])[0],
            "seconds_median": _stats([r["seconds"] for r in images])[2],
            "over_time": sum(1 for r in images if r.get("over_time")),
            "over_challenge": sum(
                1 for r in images if r["seconds"] > CHALLENGE_SECONDS_PER_CLASS * max(1, len(r.get("classes", ())))
            ),
            "capped": sum(1 for r in images if r.get("capped")),
        }
    ]


def _challenge_table(rows: list[dict]) -> str:
    head = "| run | images | failed | DSC AUC | NSD AUC | DSC final | NSD final | DSC per step | s / image |"
    head += " over the run's limit | over 90 s per class |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        line = (
            f"| {r['run']} | {r['images']} | {r['failed']} | {r['dsc_auc']:.3f} | {r['nsd_auc']:.3f} | "
            f"{r['dsc_final']:.4f} | {r['nsd_final']:.4f} | {r['dsc_per_step']} | {r['seconds_mean']:.1f} | "
            f"{r['over_time']} | {r['over_challenge']} |"
        )
        lines.append(line.replace("nan", "–"))
    return "\n".join(lines)


# the paper's column order; sam2-image is "SAM 2 <size>" or "MedSAM2" from its weights' name
_ENGINE_ORDER = ("SAM", "MedSAM", "LiteMedSAM", "SAM 2", "MedSAM2")
_ENGINE_NAMES = {"sam": "SAM", "medsam": "MedSAM", "medsam-lite": "LiteMedSAM", "sam2": "SAM 2", "sam2-image": "SAM 2"}
_SAM2_SIZES = (("base_plus", "base+"), ("base+", "base+"), ("b+", "base+"), ("tiny", "tiny"), ("small", "small"),
               ("large", "large"))  # fmt: skip
RANDOM_MARK = " (random weights)"


def engine_label(meta: dict) -> str:
    """The paper's name of a run's engine: ``SAM``, ``MedSAM``, ``LiteMedSAM``, ``SAM 2 tiny`` ... ``MedSAM2``
    (from the weights' name), with :data:`RANDOM_MARK` when the run was recorded with random weights."""
    engine = str(meta.get("engine"))
    model = Path(str(meta.get("model") or "")).name.lower()
    name = _ENGINE_NAMES.get(engine, engine)
    if engine in ("sam2", "sam2-image"):
        if "medsam2" in model:
            name = "MedSAM2"
        else:
            size = next((size for key, size in _SAM2_SIZES if key in model), None)
            name = f"SAM 2 {size}" if size else name
    return name + (RANDOM_MARK if meta.get("random_weights") else "")


def _engine_rank(label: str) -> int:
    base = label.removesuffix(RANDOM_MARK)
    return next((n for n, e in reversed(list(enumerate(_ENGINE_ORDER))) if base.startswith(e)), len(_ENGINE_ORDER))


def _engine_modality(runs: Sequence[Run]) -> tuple[list[str], list[str], list[dict]]:
    """box2d runs as (columns, modalities, rows): one row per (modality, column) with mean DSC and NSD over the
    run's objects of that modality (``all``: every object), objects counted and failures counted."""
    box2d = sorted(
        (r for r in runs if r.meta.get("protocol") == "box2d"),
        key=lambda r: (_engine_rank(engine_label(r.meta)), engine_label(r.meta), r.name),
    )
    labels = [engine_label(r.meta) for r in box2d]
    columns = [f"{lab} [{r.name}]" if labels.count(lab) > 1 else lab for lab, r in zip(labels, box2d, strict=True)]
    modalities = sorted({str(x.get("modality")) for r in box2d for x in r.records if x.get("target") is not None})
    rows = []
    for column, run in zip(columns, box2d, strict=True):
        for modality in [*modalities, "all"]:
            rs = [x for x in run.results if modality == "all" or str(x.get("modality")) == modality]
            failed = [x for x in run.failures if modality == "all" or str(x.get("modality")) == modality]
            if not rs and not failed:
                continue
            rows.append(
                {
                    "engine": column,
                    "run": run.name,
                    "modality": modality,
                    "random_weights": bool(run.meta.get("random_weights")),
                    "n": len(rs),
                    "failed": len(failed),
                    "dice_mean": _stats([x["final_dice"] for x in rs])[0],
                    "nsd_mean": _stats([x["final_nsd"] for x in rs])[0],
                }
            )
    return columns, modalities, rows


def _engine_modality_table(columns: list[str], modalities: list[str], rows: list[dict]) -> str:
    cells = {(r["modality"], r["engine"]): r for r in rows}
    lines = ["| modality | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for modality in [*modalities, "all"]:
        line = [f"**{modality}**" if modality == "all" else modality]
        for column in columns:
            r = cells.get((modality, column))
            if r is None:
                line.append("")
                continue
            text = "–" if math.isnan(r["dice_mean"]) else f"{r['dice_mean']:.3f} / {r['nsd_mean']:.3f}"
            line.append(text + (f" ({r['failed']} failed)" if r["failed"] else ""))
        lines.append("| " + " | ".join(line) + " |")
    return "\n".join(lines)


def _engine_modality_plot(columns: list[str], modalities: list[str], rows: list[dict], out: Path) -> str | None:
    """Grouped bars of mean DSC, modality x engine; random-weights runs hatched."""
    plt = _pyplot()
    if plt is None:
        return None
    cells = {(r["modality"], r["engine"]): r for r in rows}
    groups = [*modalities, "all"]
    width = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(groups) * len(columns)), 4))
    for n, column in enumerate(columns):
        values = [cells[(g, column)]["dice_mean"] if (g, column) in cells else math.nan for g in groups]
        random = any(r["random_weights"] for r in rows if r["engine"] == column)
        ax.bar([m + n * width for m in range(len(groups))], values, width * 0.9, label=column, color=f"C{n}",
               hatch="//" if random else None, alpha=0.5 if random else 0.9)  # fmt: skip
    ax.set_xticks([m + 0.4 - width / 2 for m in range(len(groups))], groups, rotation=20, ha="right")
    ax.set_ylabel("mean DSC (box2d)")
    ax.set_ylim(0, 1.02)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "engine_modality.png", dpi=120)
    plt.close(fig)
    return "engine_modality.png"


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        path.write_text("")
        return
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(buf.getvalue())
    tmp.replace(path)


def _case_rows(run: Run) -> list[dict]:
    rows = []
    for r in sorted(run.records, key=lambda r: (str(r.get("case")), str(r.get("target")))):
        row = {
            "run": run.name,
            "case": r.get("case"),
            "target": r.get("target"),
            "scope": r.get("scope", "object"),
            "modality": r.get("modality"),
            "final_dice": r.get("final_dice"),
            "final_nsd": r.get("final_nsd"),
            "auc_dice": r.get("auc_dice"),
            "auc_nsd": r.get("auc_nsd"),
            "seconds": r.get("seconds"),
            "capped": r.get("capped"),
            "error": r.get("error", ""),
        }
        for n, step in enumerate(r.get("steps", [])):
            row[f"dice_{n}"] = step["dice"]
            row[f"nsd_{n}"] = step["nsd"]
        rows.append(row)
    return rows


def _pyplot():
    """matplotlib's pyplot on the Agg backend, or None (with a warning) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots (pip install matplotlib)")
        return None
    return plt


def _plots(runs: Sequence[Run], out: Path) -> list[str]:
    """The PNGs; returns their file names (none when matplotlib is missing or there is nothing to plot)."""
    plt = _pyplot()
    if plt is None:
        return []
    made = []
    multi = [r for r in runs if any(len(x.get("steps", [])) > 1 for x in r.results)]
    if multi:
        fig, ax = plt.subplots(figsize=(6, 4))
        for run in multi:
            n_steps = max(len(x["steps"]) for x in run.results)
            means = [
                statistics.fmean(x["steps"][min(s, len(x["steps"]) - 1)]["dice"] for x in run.results)
                for s in range(n_steps)
            ]
            ax.plot(range(n_steps), means, marker="o", label=run.name)
        ax.set_xlabel("interaction (0 = first prompt, then clicks)")
        ax.set_ylabel("mean DSC")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "dice_per_step.png", dpi=120)
        plt.close(fig)
        made.append("dice_per_step.png")
    targets = sorted({str(x["target"]) for run in runs for x in run.results})
    if targets:
        fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(targets) * len(runs)), 4))
        width = 0.8 / len(runs)
        for n, run in enumerate(runs):
            data = [[x["final_dice"] for x in run.results if str(x["target"]) == t] or [math.nan] for t in targets]
            positions = [m + n * width for m in range(len(targets))]
            parts = ax.boxplot(data, positions=positions, widths=width * 0.9, patch_artist=True)
            colour = f"C{n}"
            for box in parts["boxes"]:
                box.set_facecolor(colour)
                box.set_alpha(0.6)
            ax.plot([], [], color=colour, linewidth=8, alpha=0.6, label=run.name)
        ax.set_xticks([m + 0.4 - width / 2 for m in range(len(targets))], targets, rotation=30, ha="right")
        ax.set_ylabel("final DSC")
        ax.set_ylim(0, 1.02)
        ax.grid(axis="y", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "dice_boxplot.png", dpi=120)
        plt.close(fig)
        made.append("dice_boxplot.png")
    return made


def write_report(folders: Sequence[str | Path], out: str | Path) -> Path:
    """Report on one or more result folders into ``out``; returns the path of ``report.md``."""
    if not folders:
        raise InputError("give at least one result folder")
    runs = [load_run(f) for f in folders]
    _unique_names(runs)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    by_target = [row for run in runs for row in _group_rows(run, "target")]
    by_modality = [row for run in runs for row in _group_rows(run, "modality")]
    steps = any(len(x.get("steps", [])) > 1 for run in runs for x in run.results)
    challenge = [row for run in runs for row in _challenge_rows(run)]
    _write_csv(out / "summary.csv", by_target)
    if challenge:
        _write_csv(out / "challenge.csv", challenge)
    _write_csv(out / "cases.csv", [row for run in runs for row in _case_rows(run)])
    plots = _plots(runs, out)
    columns, modalities, engine_rows = _engine_modality(runs)
    if engine_rows:
        _write_csv(out / "engine_modality.csv", engine_rows)
        made = _engine_modality_plot(columns, modalities, engine_rows, out)
        plots += [made] if made else []
    lines = ["# volsam benchmark report", "", "| run | dataset | protocol | engine | model | device | volsam |"]
    lines.append("|---|---|---|---|---|---|---|")
    for run in runs:
        m = run.meta
        model = (m.get("model") or "default") + (RANDOM_MARK if m.get("random_weights") else "")
        lines.append(
            f"| {run.name} | {m.get('dataset_name', m.get('dataset'))} | {m.get('protocol')} | {m.get('engine')} | "
            f"{model} | {m.get('device')} | {m.get('versions', {}).get('volsam', '?')} |"
        )
    notes = [f"- {run.name}: {run.meta['note']}" for run in runs if run.meta.get("note")]
    if notes:
        lines += ["", "Notes:", "", *notes]
    if challenge:
        lines += ["", "## CVPR 2025 challenge scores (per image, as CVPR25_iter_eval.py computes them)", ""]
        lines += [_challenge_table(challenge), ""]
        lines.append(
            "Means over images. Per image: DSC and NSD are means over its classes (NSD = 0 where that mean "
            "DSC <= 0.2); AUC = trapezoid rule over the 5 click steps (at most 4.0); time = inference time of "
            "the 6 steps; over the run's limit = images past the run's time limit (`time_limit_s` in the results; "
            "90 s per class unless `--time-limit` changed it); over 90 s per class = images the challenge's "
            "limit would have cut on this machine."
        )
    if engine_rows:
        lines += ["", "## 2D: engine × modality (box2d; mean DSC / NSD)", ""]
        lines += [_engine_modality_table(columns, modalities, engine_rows), ""]
        lines.append(
            "One box per object on each image; DSC / NSD on the 2D masks, means over the objects of that modality "
            "(all: every object of the run)."
        )
        if any(r["random_weights"] for r in engine_rows):
            lines.append(
                f"Columns marked{RANDOM_MARK} ran with randomly initialised weights (`--random-weights`): they "
                "show that the engine's path runs, and say nothing about its accuracy."
            )
    lines += ["", "## Per target", "", _markdown_table(by_target, "target", steps), ""]
    lines += ["## Per modality", "", _markdown_table(by_modality, "modality", steps), ""]
    lines.append(
        "DSC and NSD are the final step's; NSD at each run's tolerance "
        f"({', '.join(sorted({str(r.meta.get('tolerance_mm')) + ' mm' for r in runs}))}); "
        "NSD as DeepMind's surface-distance computes it (volsam.metrics). cvpr25 per target: the class's own "
        "DSC, its NSD with 0 where its DSC <= 0.2, AUC over the click steps; other interactive protocols: AUC "
        "over all steps. Failed objects are counted, not averaged."
    )
    for name in plots:
        lines += ["", f"![{name}]({name})"]
    failures = [(run.name, f) for run in runs for f in run.failures]
    if failures:
        lines += ["", "## Failures", ""]
        lines += [f"- {name}: {f.get('case')} / {f.get('target')}: {f['error']}" for name, f in failures]
    for run in runs:
        if run.meta.get("problems"):
            lines += ["", f"## Dataset problems ({run.name})", ""]
            lines += [f"- {p}" for p in run.meta["problems"]]
    report = out / "report.md"
    tmp = report.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(report)
    return report
