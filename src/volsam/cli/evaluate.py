"""``volsam bench``, ``volsam report`` and ``volsam finetune``: evaluate engines on datasets, summarise, fine-tune."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from volsam.cli.app import app, progress_display


@app.command("bench")
def bench_cmd(
    dataset: Annotated[
        str, typer.Argument(help="Dataset folder (MSD task, BraTS, CVPR .npz, images/+labels/) or builtin:lesions.")
    ],
    protocol: Annotated[str, typer.Option(help="cvpr25, seed-mask, seed-clicks, box-middle or box3d.")] = "cvpr25",
    output: Annotated[Path, typer.Option("--output", "-o", help="Result folder (resumable).")] = Path("results/bench"),
    engine: Annotated[str, typer.Option(help="medsam-lite or sam2.")] = "medsam-lite",
    model: Annotated[str | None, typer.Option(help="Weights (directory, .pt, catalogue name).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    precision: Annotated[str, typer.Option(help="auto, fp32 or bf16.")] = "auto",
    label: Annotated[
        list[str] | None, typer.Option("--label", help="Only this target (repeatable): e.g. whole-tumour, spleen.")
    ] = None,
    cases: Annotated[str | None, typer.Option(help="Comma-separated case ids.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many cases (after sharding).")] = None,
    shard: Annotated[str | None, typer.Option(help="i/n: every n-th case from the i-th (1-based).")] = None,
    layout: Annotated[str | None, typer.Option(help="msd, brats, npz or pairs (default: detected).")] = None,
    channel: Annotated[int | None, typer.Option(help="MSD 4D tasks: which channel (default 0).")] = None,
    sequence: Annotated[str, typer.Option(help="BraTS: flair, t1, t1ce or t2.")] = "flair",
    clicks: Annotated[int, typer.Option(help="Simulated clicks (cvpr25, seed-clicks).")] = 5,
    tolerance: Annotated[float, typer.Option(help="NSD tolerance in mm.")] = 2.0,
    time_limit: Annotated[float, typer.Option(help="cvpr25: seconds allowed per object.")] = 90.0,
    note: Annotated[str, typer.Option(help="A line about this run, shown in the report.")] = "",
) -> None:
    """Evaluate an engine on a dataset with a published protocol; one JSON line per case and object."""
    from volsam.bench.runner import BenchConfig, parse_shard, run_bench

    config = BenchConfig(
        dataset=dataset,
        protocol=protocol,
        out=str(output),
        engine=engine,
        model=model,
        device=device,
        precision=precision,
        layout=layout,
        channel=channel,
        sequence=sequence,
        targets=list(label or []),
        cases=[c for c in (cases or "").split(",") if c],
        limit=limit,
        shard=parse_shard(shard) if shard else None,
        clicks=clicks,
        tolerance_mm=tolerance,
        time_limit_s=time_limit,
        note=note,
    )
    with progress_display() as progress:
        task = progress.add_task("cases", total=None)

        def on_case(case_id: str, done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, description=case_id or "done")

        results = run_bench(config, progress=on_case)
    typer.echo(f"results: {results} (summarise with: volsam report {output} -o report/)")


@app.command("finetune")
def finetune_cmd(
    config: Annotated[
        str, typer.Argument(help="YAML config, or a shipped recipe: seed-2024, medsam2-2025, medsam-lite.")
    ],
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the run folder's newest checkpoint.")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Run folder (default: output/name).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps (default: config).")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Stop after N optimizer steps.")] = None,
    stop_after: Annotated[
        int | None, typer.Option("--stop-after", help="Leave after step N as if interrupted (resume later).")
    ] = None,
) -> None:
    """Fine-tune SAM 2 / MedSAM2 / LiteMedSAM on your data (one process, or every rank under torchrun)."""
    from volsam.finetune.trainer import run_finetune

    shown: dict[str, str] = {}
    with progress_display() as progress:
        task = progress.add_task("steps", total=None)

        def on_step(record: dict) -> None:
            if "val_dice" in record:
                shown["val"] = f"validation Dice {record['val_dice']:.4f} ({record['val_mode']}, step {record['step']})"
            else:
                shown["loss"] = f"loss {record['loss']:.4f}"
            progress.update(task, completed=record["step"], description=" | ".join(shown.values()))

        run_dir = run_finetune(
            config, resume=resume, output=output, device=device, max_steps=max_steps, stop_after=stop_after,
            on_step=on_step,
        )  # fmt: skip
    facts = run_dir / "best" / "training.json"
    if facts.is_file():
        best = json.loads(facts.read_text())
        typer.echo(f"best validation Dice {best['val_dice']:.4f} at step {best['step']} (of {best['total_steps']})")
    typer.echo(f"run: {run_dir} (models in {run_dir / 'best'} and {run_dir / 'last'})")


@app.command("report")
def report_cmd(
    runs: Annotated[list[Path], typer.Argument(help="Result folders of volsam bench, compared side by side.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write report.md, CSV and PNG.")] = Path(
        "report"
    ),
) -> None:
    """Markdown + CSV tables and PNG plots from one or more volsam bench result folders."""
    from volsam.bench.report import write_report

    typer.echo(f"report: {write_report(runs, output)}")
