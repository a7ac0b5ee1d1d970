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
    protocol: Annotated[
        str, typer.Option(help="cvpr25, seed-mask, seed-clicks, box-middle, box3d or box2d (2D images).")
    ] = "cvpr25",
    output: Annotated[Path, typer.Option("--output", "-o", help="Result folder (resumable).")] = Path("results/bench"),
    engine: Annotated[str, typer.Option(help="medsam-lite, sam2, sam, medsam or sam2-image.")] = "medsam-lite",
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
    modality: Annotated[
        str | None,
        typer.Option(help="Modality of every case (default: the CVPR file-name prefix, dataset.json, or auto)."),
    ] = None,
    objects: Annotated[
        str, typer.Option(help="box2d: one box per label (labels) or per connected component (components).")
    ] = "labels",
    random_weights: Annotated[
        bool,
        typer.Option(
            "--random-weights",
            help="Say that --model holds randomly initialised weights (a test model): recorded, and the report "
            "labels the run as not meaningful for accuracy.",
        ),
    ] = False,
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
        modality=modality,
        objects=objects,
        random_weights=random_weights,
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
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Run folder (default: runs/NAME, NAME from the config).")
    ] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda, cuda:N or mps (default: config).")] = None,
    max_steps: Annotated[int | None, typer.Option("--max-steps", help="Stop after N optimizer steps.")] = None,
    stop_after: Annotated[
        int | None, typer.Option("--stop-after", help="Leave after step N as if interrupted (resume later).")
    ] = None,
) -> None:
    """Fine-tune SAM 2 / MedSAM2 / LiteMedSAM on your data (one process, or every rank under torchrun)."""
    from volsam.finetune.runlog import read_status
    from volsam.finetune.trainer import run_finetune

    with FinetuneProgress() as progress:
        run_dir = run_finetune(
            config, resume=resume, output=output, device=device, max_steps=max_steps, stop_after=stop_after,
            on_step=progress.record, on_phase=progress.phase,
        )  # fmt: skip
    status = read_status(run_dir) or {}
    if status.get("state") == "stopped":
        typer.echo(f"stopped after step {status['step']} of {status['total_steps']}: continue with --resume")
        typer.echo(f"run: {run_dir}")
        return
    facts = run_dir / "best" / "training.json"
    if facts.is_file():
        best = json.loads(facts.read_text())
        typer.echo(f"best validation Dice {best['val_dice']:.4f} at step {best['step']} (of {best['total_steps']})")
    typer.echo(f"run: {run_dir} (models in {run_dir / 'best'} and {run_dir / 'last'})")


class FinetuneProgress:
    """What ``volsam finetune`` shows while it trains: step/total, loss, the latest validation Dice, time
    elapsed and an ETA (mean time per step so far, validations left out, times the steps left).

    On a terminal: a rich progress bar on stderr, started at the run's first event (a refused start shows
    nothing) and gone when the run ends. Elsewhere (stderr to a file or a pipe): a plain line on stderr at the
    first step, after each validation, at the last step and at most every ``every_s`` seconds between. Nothing
    with ``--quiet``. Log lines (``-v``) print above the bar.
    """

    def __init__(self, console=None, every_s: float = 30.0) -> None:
        import logging
        import time

        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.quiet = logging.getLogger("volsam").getEffectiveLevel() >= logging.ERROR
        self.every_s = every_s
        self.clock = time.monotonic
        self.progress = None
        self.task = None
        self.start_step = 0
        self.total = 0
        self.step = 0
        self.t_start = 0.0
        self.t_val = None  # when the running validation began
        self.val_time = 0.0  # seconds spent validating since the start
        self.printed = None  # when the last plain line was printed
        self.loss = "loss -"
        self.val = "val Dice -"
        self._streams = []  # logging handlers pointed at the bar's stderr while it shows

    # -- the trainer's callbacks ------------------------------------------------------------------------
    def phase(self, name: str, info: dict) -> None:
        if name == "start":
            self.start_step = self.step = int(info["step"])
            self.total = int(info["total_steps"])
            self.t_start = self.clock()
            self._show("training", force=False)
        elif name == "validation":
            self.t_val = self.clock()
            self._show(f"validating (step {info['step']})", force=False, plain=False)

    def record(self, record: dict) -> None:
        if "val_dice" in record:
            if self.t_val is not None:
                self.val_time += self.clock() - self.t_val
                self.t_val = None
            self.val = f"val Dice {record['val_dice']:.4f} (step {record['step']})"
            self._show("training", force=True)
        elif "loss" in record:
            self.step = int(record["step"])
            self.loss = f"loss {record['loss']:.4f}"
            first, last = self.step == self.start_step + 1, self.step >= self.total
            self._show("training", force=first or last)

    # -- display ----------------------------------------------------------------------------------------
    def eta(self) -> str:
        done = self.step - self.start_step
        if done <= 0:
            return "eta -"
        per_step = max(0.0, self.clock() - self.t_start - self.val_time) / done
        return f"eta {_clock(per_step * max(0, self.total - self.step))}"

    def line(self) -> str:
        elapsed = _clock(self.clock() - self.t_start)
        return f"step {self.step}/{self.total} | {self.loss} | {self.val} | {elapsed} elapsed, {self.eta()}"

    def _show(self, description: str, force: bool, plain: bool = True) -> None:
        if self.quiet or not self.total:
            return
        if self.console.is_terminal:
            self._bar(description)
            return
        now = self.clock()
        due = self.printed is None or now - self.printed >= self.every_s
        if plain and self.step > self.start_step and (force or due):
            self.console.file.write(f"volsam: finetune {self.line()}\n")
            self.console.file.flush()
            self.printed = now

    def _bar(self, description: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Column

        if self.progress is None:
            self.progress = Progress(
                TextColumn("{task.description}", table_column=Column(min_width=len("validating (step 00000)"))),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[loss]}"),
                TextColumn("{task.fields[val]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[eta]}"),
                console=self.console,
                transient=True,
            )
            import sys

            before = sys.stderr
            self.progress.start()
            self._point_logs_at_the_bar(before)
            self.task = self.progress.add_task(
                description, total=self.total, completed=self.step, loss=self.loss, val=self.val, eta=self.eta()
            )
        self.progress.update(
            self.task, description=description, completed=self.step, loss=self.loss, val=self.val, eta=self.eta(),
            refresh=True,
        )  # fmt: skip

    def _point_logs_at_the_bar(self, before) -> None:
        # logging's handlers hold the stderr of before the bar: send their lines through the bar's stderr
        # (printed above the bar) instead of over it
        import logging
        import sys

        if sys.stderr is before:
            return
        for logger in (logging.getLogger(), logging.getLogger("volsam")):
            for handler in logger.handlers:
                if type(handler) is logging.StreamHandler and handler.stream is before:
                    self._streams.append((handler, handler.setStream(sys.stderr)))

    def close(self) -> None:
        for handler, stream in self._streams:
            handler.setStream(stream)
        self._streams = []
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def __enter__(self) -> FinetuneProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


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
