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
            "capped": sum(1 for r in images if r.get("capped")),
        }
    ]


def _challenge_table(rows: list[dict]) -> str:
    head = "| run | images | failed | DSC AUC | NSD AUC | DSC final | NSD final | DSC per step | s / image |"
    head += " over time |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        line = (
            f"| {r['run']} | {r['images']} | {r['failed']} | {r['dsc_auc']:.3f} | {r['nsd_auc']:.3f} | "
            f"{r['dsc_final']:.4f} | {r['nsd_final']:.4f} | {r['dsc_per_step']} | {r['seconds_mean']:.1f} | "
            f"{r['over_time']} |"
        )
        lines.append(line.replace("nan", "–"))
    return "\n".join(lines)


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


def _plots(runs: Sequence[Run], out: Path) -> list[str]:
    """The PNGs; returns their file names (none when matplotlib is missing or there is nothing to plot)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: no plots (pip install matplotlib)")
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
    lines = ["# volsam benchmark report", "", "| run | dataset | protocol | engine | model | device | volsam |"]
    lines.append("|---|---|---|---|---|---|---|")
    for run in runs:
        m = run.meta
        lines.append(
            f"| {run.name} | {m.get('dataset_name', m.get('dataset'))} | {m.get('protocol')} | {m.get('engine')} | "
            f"{m.get('model') or 'default'} | {m.get('device')} | {m.get('versions', {}).get('volsam', '?')} |"
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
            "the 6 steps; over time = images past 90 s per class."
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
