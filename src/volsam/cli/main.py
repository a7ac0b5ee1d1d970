"""``volsam`` command line: parse, call one function of :mod:`volsam.workflow`, print. No logic here.

Every refusal is one line on stderr (``volsam: error: ...``) and a non-zero exit; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from volsam.core.errors import VolsamError

app = typer.Typer(
    name="volsam",
    help="Prompt one slice, segment the whole volume (SAM 2-family and LiteMedSAM models).",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
log = logging.getLogger("volsam")
_STATE = {"debug": False}


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what each step does.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="volsam: %(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("volsam").setLevel(level)
    _STATE["debug"] = debug


def _progress():  # rich is imported only when a command runs
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(),
        transient=True,
    )


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _load_engine(options: dict) -> None:
    """Replace the engine options by the loaded engine: the model loads before the progress bar starts, so
    that a refusal stays one line on stderr."""
    from volsam.engines import get as get_engine

    precision = options.pop("precision", "auto")
    extra = {} if precision == "auto" else {"precision": precision}
    options["engine"] = get_engine(
        options.pop("engine"), model=options.get("model"), device=options.pop("device"), **extra
    )  # ``model`` stays: a DICOM-SEG output records it


def _run_prompts_file(image: str, prompts_file: Path, output: Path, options: dict, overlay, series, channel) -> None:
    from volsam.workflow import segment_file_with_prompts

    _load_engine(options)
    with _progress() as progress:
        task = progress.add_task("running prompts", total=None)
        result = segment_file_with_prompts(
            image,
            prompts_file,
            output,
            overlay_dir=overlay,
            series=series,
            channel=channel,
            on_prompt=lambda _label, _prompt: progress.advance(task),
            **options,
        )
    objects = ", ".join(f"{label} {name!r}: {voxels} voxels" for label, name, voxels in result.objects)
    typer.echo(f"wrote {result.output} ({objects}; {result.seconds:.1f} s)")
    if result.overlays:
        typer.echo(f"overlays: {Path(result.overlays[-1]).parent}")


def _run_segment(prompts, image: str, output: Path, options: dict, mask, overlay, series, channel) -> None:
    from volsam.workflow import segment_file

    _load_engine(options)

    with _progress() as progress:
        task = progress.add_task("segmenting slices", total=None)
        result = segment_file(
            image,
            prompts,
            output,
            mask_path=mask,
            overlay_dir=overlay,
            series=series,
            channel=channel,
            on_frame=lambda _res: progress.advance(task),
            **options,
        )
    rep = result.report
    rng = f"slices {rep.frame_range[0]}..{rep.frame_range[1]}" if rep.frame_range else "no slice"
    typer.echo(
        f"wrote {result.output} ({result.voxels} voxels, {result.volume_ml:.2f} ml, {rng}; "
        f"{rep.frames_segmented} slices segmented in {rep.seconds:.1f} s)"
    )
    if result.overlays:
        typer.echo(f"overlays: {Path(result.overlays[-1]).parent}")


def _run_video(image: str, prompts: list, output: Path, options: dict, mask, frame, overlay) -> None:
    from volsam.video_job import segment_video

    _load_engine(options)
    progress = _progress()
    tasks: dict[str, int] = {}

    def on_progress(stage: str, done: int, total: int) -> None:  # the bar starts with the first frame done,
        if not tasks:  # so that a refused prompt stays one line on stderr
            progress.start()
        if stage not in tasks:
            tasks[stage] = progress.add_task(f"{stage} frames", total=total)
        progress.update(tasks[stage], completed=done)

    try:
        result = segment_video(
            image, prompts, output, mask_path=mask, mask_frame=frame, overlay=overlay, progress=on_progress, **options
        )
    finally:
        if tasks:
            progress.stop()
    info, rng = result.info, result.frame_range
    where = f"frames {rng[0]}..{rng[1]}" if rng else "no frame"
    typer.echo(
        f"wrote {result.output} ({info.frame_count} frames at {float(info.fps):.3g} fps, {info.width}x{info.height}; "
        f"object on {result.frames_with_object} frames, {where}; {result.seconds:.1f} s)"
    )
    typer.echo(f"metadata: {result.sidecar}")
    if result.overlay is not None:
        typer.echo(f"overlay: {result.overlay}")


@app.command("segment")
def segment_cmd(
    image: Annotated[
        str, typer.Argument(help="NIfTI/NRRD/MHA file, DICOM folder or .zip, CVPR .npz; or a video / DICOM cine.")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Label map to write (.nii.gz, .nrrd, .mha; .dcm: DICOM-SEG); video: masks/ or .npz."
        ),
    ],
    box: Annotated[
        str | None, typer.Option(help="I0,J0,I1,J1 on --slice (inclusive voxels); video: X0,Y0,X1,Y1 on --frame.")
    ] = None,
    slice_: Annotated[int | None, typer.Option("--slice", help="Slice index of --box along --axis.")] = None,
    frame: Annotated[
        int | None, typer.Option(help="Video / DICOM cine: frame of --box and --mask (0-based); -o masks/ or .npz.")
    ] = None,
    box3d: Annotated[str | None, typer.Option(help="I0,J0,K0,I1,J1,K1 (inclusive voxels).")] = None,
    point: Annotated[
        list[str] | None, typer.Option(help="I,J,K or I,J,K,neg (video: X,Y,FRAME[,neg]); repeatable.")
    ] = None,
    mask: Annotated[
        str | None, typer.Option(help="Mask image on the same grid (non-zero = object); video: a PNG on --frame.")
    ] = None,
    prompts_file: Annotated[
        Path | None,
        typer.Option("--prompts", help="Prompts JSON: several objects and corrections in order (see README)."),
    ] = None,
    engine: Annotated[str, typer.Option(help="Engine name (volsam models list).")] = "medsam-lite",
    model: Annotated[str | None, typer.Option(help="Model name or weights path.")] = None,
    axis: Annotated[str, typer.Option(help="Propagation axis: i, j, k, axial, coronal, sagittal.")] = "k",
    window: Annotated[str | None, typer.Option(help="CT window: abdomen|lung|brain|bone|mediastinum|L,W.")] = None,
    modality: Annotated[str, typer.Option(help="auto, CT, MR, PET or other.")] = "auto",
    label: Annotated[int, typer.Option(help="Label value written for the object.")] = 1,
    overlay: Annotated[
        Path | None, typer.Option(help="Folder for overlay PNGs (video: an .mp4/.mov/.mkv/.avi to render).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    precision: Annotated[
        str, typer.Option(help="auto, fp32 or bf16 (autocast); auto = bf16 for sam2 on CUDA, fp32 otherwise.")
    ] = "auto",
    series: Annotated[str | None, typer.Option(help="SeriesInstanceUID when a folder holds several.")] = None,
    channel: Annotated[int | None, typer.Option(help="Volume to use from a 4D image (0-based).")] = None,
    strategy: Annotated[str, typer.Option(help="Propagation: volsam or baseline (CVPR24).")] = "volsam",
    full_range: Annotated[
        bool, typer.Option(help="sam2: track through the whole range instead of stopping once the object is gone.")
    ] = False,
    absent_frames: Annotated[
        int | None,
        typer.Option(help="sam2: stop a direction after this many slices without the object (3; videos: none)."),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format", help="auto (from the -o extension) or dicom-seg (a DICOM Segmentation of a DICOM input)."
        ),
    ] = "auto",
) -> None:
    """Segment one object from a box, a 3D box, points or a mask, and write a label map."""
    from volsam.cli.parsing import parse_box, parse_box3d, parse_point
    from volsam.core.errors import PromptError
    from volsam.io.video import is_video_input
    from volsam.propagate import PropagationSettings

    video = is_video_input(image)
    if frame is not None and not video:
        raise PromptError(f"--frame applies to videos and DICOM cine files, not to {image}: use --slice for volumes")
    if video:
        volume_only = {
            "--slice": slice_ is not None,
            "--box3d": box3d is not None,
            "--prompts": prompts_file is not None,
            "--axis": axis != "k",
            "--window": window is not None,
            "--modality": modality != "auto",
            "--series": series is not None,
            "--channel": channel is not None,
            "--format": output_format != "auto",
        }
        given = [name for name, used in volume_only.items() if used]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            raise PromptError(f"{', '.join(given)} {verb} to volumes, not to a video: give --box with --frame N")
        if box is not None and frame is None:
            raise PromptError("--box on a video needs --frame N (the frame the box is drawn on)")
        prompts = ([parse_box(box, frame)] if box is not None else []) + [parse_point(p) for p in point or []]
        if absent_frames is not None and absent_frames < 1:
            raise PromptError(f"--absent-frames must be >= 1, got {absent_frames}")
        options = dict(engine=engine, model=model, device=device, precision=precision, label=label)
        options.update(absent_patience=None if full_range else absent_frames)
        if strategy == "baseline":
            options["settings"] = PropagationSettings.baseline()
        _run_video(image, prompts, output, options, mask, frame, overlay)
        return
    absent_frames = 3 if absent_frames is None else absent_frames
    if prompts_file is not None:
        if box is not None or box3d is not None or point or mask is not None or slice_ is not None:
            raise PromptError("--prompts replaces --box, --slice, --box3d, --point and --mask: give one or the other")
        if label != 1:
            raise PromptError("--label does not apply to --prompts: the file gives each object its label")
        options = dict(
            engine=engine,
            model=model,
            device=device,
            precision=precision,
            modality=modality,
            window=window,
            settings=PropagationSettings() if strategy == "volsam" else PropagationSettings.baseline(),
            absent_patience=None if full_range else absent_frames,
            axis=None if axis == "k" else axis,
            output_format=output_format,
        )
        _run_prompts_file(image, prompts_file, output, options, overlay, series, channel)
        return
    prompts = []
    if box is not None:
        prompts.append(parse_box(box, slice_))
    elif slice_ is not None:
        raise PromptError("--slice goes with --box")
    if box3d is not None:
        prompts.append(parse_box3d(box3d))
    prompts += [parse_point(p) for p in point or []]
    if not prompts and mask is None:
        raise PromptError("give a prompt: --box with --slice, --box3d, --point or --mask")
    if strategy not in ("volsam", "baseline"):
        raise PromptError(f"strategy {strategy!r} is not volsam or baseline")
    if absent_frames < 1:
        raise PromptError(f"--absent-frames must be >= 1, got {absent_frames}")
    settings = PropagationSettings() if strategy == "volsam" else PropagationSettings.baseline()
    options = dict(
        engine=engine,
        model=model,
        axis=axis,
        window=window,
        modality=modality,
        label=label,
        device=device,
        precision=precision,
        settings=settings,
        absent_patience=None if full_range else absent_frames,
        output_format=output_format,
    )
    _run_segment(prompts, image, output, options, mask, overlay, series, channel)


@app.command("info")
def info_cmd(
    image: Annotated[
        str, typer.Argument(help="NIfTI/NRRD/MHA file, DICOM folder or .zip, CVPR .npz; or a video / DICOM cine.")
    ],
    series: Annotated[str | None, typer.Option(help="SeriesInstanceUID when a folder holds several.")] = None,
    channel: Annotated[int | None, typer.Option(help="Volume to use from a 4D image (0-based).")] = None,
) -> None:
    """Print size, spacing, origin, direction (with anatomical axis names), modality and intensities; for a
    video: frames, fps, size, duration and codec."""
    from volsam.io import describe, format_description, read_volume
    from volsam.io.video import is_video_input, probe_video
    from volsam.preprocess import guess_modality

    if is_video_input(image) and series is None and channel is None:
        typer.echo(probe_video(image).describe())
        return
    vol = read_volume(image, series=series, channel=channel)
    facts = describe(vol)
    modality, reason = guess_modality(vol)
    facts["modality"] = f"{modality} ({reason})"
    typer.echo(format_description(facts))


@app.command("demo")
def demo_cmd(
    output_dir: Annotated[Path, typer.Option("--output-dir", "-o", help="Where to write.")] = Path("demo-output"),
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
) -> None:
    """Segment a lesion in the MNI152 T1 (nilearn) from one box; writes NIfTI + PNGs, prints the Dice."""
    from volsam.demo import demo_case, run_demo

    box = demo_case().middle_box
    typer.echo(
        f"demo: MNI152 2009 T1 (from nilearn) with an inserted dark lesion; engine medsam-lite; one box "
        f"{box.u0},{box.v0},{box.u1},{box.v1} on axial slice {box.slice}"
    )
    with _progress() as progress:
        task = progress.add_task("segmenting slices", total=None)
        res = run_demo(output_dir, device=device, on_frame=lambda _r: progress.advance(task))
    rep = res.job.report
    rng = f"slices {rep.frame_range[0]}..{rep.frame_range[1]}" if rep.frame_range else "no slice"
    typer.echo(f"image:      {res.image_path.resolve()}")
    typer.echo(
        f"label map:  {res.job.output.resolve()} ({res.job.volume_ml:.2f} ml, {rng}; "
        f"{rep.frames_segmented} slices in {rep.seconds:.1f} s)"
    )
    typer.echo(f"truth:      {res.truth_path.resolve()}  -> Dice {res.dice:.3f}")
    typer.echo(f"overlays:   {(Path(output_dir) / 'overlays').resolve()} (montage.png: 16 slices)")
    typer.echo(
        f"try:        volsam segment {res.image_path} --box {box.u0},{box.v0},{box.u1},{box.v1} "
        f"--slice {box.slice} -o my_seg.nii.gz --overlay my_pngs/"
    )


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
    with _progress() as progress:
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
    with _progress() as progress:
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


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface; needs a token).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    token_file: Annotated[
        Path | None, typer.Option(help="File holding the bearer token (default beyond loopback: a new one, printed).")
    ] = None,
    max_sessions: Annotated[int, typer.Option(help="Sessions open at once (more get HTTP 503).")] = 8,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted (HTTP 413 above).")] = 2048.0,
    idle_timeout: Annotated[float, typer.Option(help="Seconds before an unused session is closed.")] = 1800.0,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N or mps.")] = "auto",
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Allow browser pages of this origin (repeatable; none by default).")
    ] = None,
) -> None:
    """Serve the session API, its OpenAPI docs (/docs) and the web page on http://HOST:PORT."""
    import uvicorn

    from volsam.server.app import create_app
    from volsam.server.config import ServerConfig, is_loopback, new_token, read_token

    token = read_token(token_file) if token_file else None
    if token is None and not is_loopback(host):
        token = new_token()
        typer.echo(f"volsam serve: listening beyond loopback; bearer token for this run: {token}", err=True)
    config = ServerConfig(
        host=host,
        port=port,
        token=token,
        max_sessions=max_sessions,
        max_upload_mb=max_upload_mb,
        idle_timeout_s=idle_timeout,
        device=device,
        cors_origins=list(cors_origin or []),
    )
    typer.echo(f"volsam serve: http://{host}:{port} (API docs at /docs)", err=True)
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning")


models_app = typer.Typer(
    help="Known models; convert Meta/MedSAM2 checkpoints; download from the hub.", no_args_is_help=True
)
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list_cmd() -> None:
    """Known models: name, engine, parameters, input size, license, where it is here, source."""
    from volsam.engines.catalog import CATALOG, installed, models_dir

    rows = [("name", "engine", "params", "input", "license", "installed", "source")]
    for info in CATALOG.values():
        where = installed(info)
        rows.append(
            (
                info.name,
                info.engine,
                f"{info.params_m:g}M",
                str(info.input_size),
                info.license,
                str(where) if where else "no",
                info.source,
            )
        )
    widths = [max(len(r[n]) for r in rows) for n in range(len(rows[0]) - 1)]
    for row in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    typer.echo(f"(local models directory: {models_dir()}; set VOLSAM_MODELS to change it)")


@models_app.command("convert")
def models_convert_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Meta SAM 2 / 2.1 or MedSAM2 .pt file.")],
    output_dir: Annotated[Path, typer.Argument(help="transformers directory to create.")],
    config: Annotated[
        str | None,
        typer.Option(help="medsam2, sam2.1-hiera-tiny, ... (default: detected from the weights and file name)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT_DIR if it exists.")] = False,
) -> None:
    """Convert a Meta / MedSAM2 checkpoint to a transformers directory that --model accepts."""
    from volsam.engines.sam2.convert import convert_checkpoint

    variant = convert_checkpoint(checkpoint, output_dir, config=config, overwrite=overwrite)
    typer.echo(f"{checkpoint} ({variant.name}) -> {output_dir}")


@models_app.command("download")
def models_download_cmd(
    name: Annotated[str, typer.Argument(help="A name from `volsam models list`, e.g. sam2.1-hiera-tiny.")],
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Default: the local models directory.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the directory if it exists.")] = False,
) -> None:
    """Download a transformers-format SAM 2 model from the Hugging Face hub."""
    from volsam.engines.catalog import model_info, models_dir
    from volsam.engines.sam2.download import download

    info = model_info(name)
    out = download(info, output_dir or models_dir() / info.name, overwrite=overwrite)
    typer.echo(f"{info.hub_id} -> {out}")


def run(argv: list[str] | None = None) -> int:
    """Console-script entry point: one line per error, exit codes from :mod:`volsam.errors`."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        app(args=args, prog_name="volsam", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        typer.echo("volsam: aborted", err=True)
        return 130
    except typer.TyperException as exc:  # usage errors of the vendored click: bad or missing options
        if type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(exc.format_message())
            return 0
        typer.echo(f"volsam: error: {' '.join(exc.format_message().split())}", err=True)
        return 2
    except VolsamError as exc:
        if debug:
            raise
        typer.echo(f"volsam: error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("volsam: interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 -- the last line of defence: one line, no traceback
        if debug:
            raise
        typer.echo(f"volsam: internal error: {type(exc).__name__}: {exc} (run with --debug for details)", err=True)
        return 70
    return 0


if __name__ == "__main__":
    sys.exit(run())
