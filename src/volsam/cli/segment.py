"""``volsam segment``: map the flags onto a :class:`~volsam.jobs.request.SegmentRequest` and prompts, call one
job (:mod:`volsam.jobs.volume` or :mod:`volsam.jobs.video`), print what it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from volsam.cli.app import app, progress_display
from volsam.core.errors import PromptError


def _run_prompts_file(image: str, prompts_file: Path, output: Path, request, overlay, series, channel) -> None:
    from volsam.jobs.volume import segment_file_with_prompts

    with progress_display() as progress:  # it appears with the first prompt done
        task = progress.add_task("running prompts", total=None)
        result = segment_file_with_prompts(
            image,
            prompts_file,
            output,
            request,
            overlay_dir=overlay,
            series=series,
            channel=channel,
            on_prompt=lambda _label, _prompt: progress.advance(task),
        )
    objects = ", ".join(f"{label} {name!r}: {voxels} voxels" for label, name, voxels in result.objects)
    typer.echo(f"wrote {result.output} ({objects}; {result.seconds:.1f} s)")
    if result.overlays:
        typer.echo(f"overlays: {Path(result.overlays[-1]).parent}")


def _run_segment(prompts, image: str, output: Path, request, mask, overlay, series, channel, objects, planar) -> None:
    from volsam.jobs.volume import segment_file

    with progress_display() as progress:
        task = progress.add_task("segmenting slices", total=None)
        result = segment_file(
            image,
            prompts,
            output,
            request,
            mask_path=mask,
            overlay_dir=overlay,
            series=series,
            channel=channel,
            on_frame=lambda _res: progress.advance(task),
            objects=objects,
            planar=planar,
        )
    rep = result.report
    if len(result.objects) > 1:
        each = ", ".join(f"label {label}: {voxels}" for label, voxels in result.objects)
        typer.echo(f"wrote {result.output} ({len(result.objects)} objects, voxels {each})")
    else:
        rng = f"slices {rep.frame_range[0]}..{rep.frame_range[1]}" if rep.frame_range else "no slice"
        typer.echo(
            f"wrote {result.output} ({result.voxels} voxels, {result.volume_ml:.2f} ml, {rng}; "
            f"{rep.frames_segmented} slices segmented in {rep.seconds:.1f} s)"
        )
    if result.overlays:
        typer.echo(f"overlays: {Path(result.overlays[-1]).parent}")


def _run_video(image: str, prompts: list, output: Path, request, mask, frame, overlay, frames=None) -> None:
    from volsam.jobs.video import segment_video

    tasks: dict[str, int] = {}
    with progress_display() as progress:

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(f"{stage} frames", total=total)
            progress.update(tasks[stage], completed=done)

        result = segment_video(
            image,
            prompts,
            output,
            request,
            mask_path=mask,
            mask_frame=frame,
            overlay=overlay,
            progress=on_progress,
            frames=frames,
        )
    info, rng = result.info, result.frame_range
    where = f"frames {rng[0]}..{rng[1]}" if rng else "no frame"
    typer.echo(
        f"wrote {result.output} ({info.frame_count} frames at {float(info.fps):.3g} fps, {info.width}x{info.height}; "
        f"object on {result.frames_with_object} frames, {where}; {result.seconds:.1f} s)"
    )
    typer.echo(f"metadata: {result.sidecar}")
    if result.overlay is not None:
        typer.echo(f"overlay: {result.overlay}")


def _check_video_flags(given: dict[str, bool], box: str | None, frame: int | None) -> None:
    """Refuse volume-only flags (``given``: flag -> used) and a video box without its frame."""
    used = [name for name, on in given.items() if on]
    if used:
        verb = "applies" if len(used) == 1 else "apply"
        raise PromptError(f"{', '.join(used)} {verb} to volumes, not to a video: give --box with --frame N")
    if box is not None and frame is None:
        raise PromptError("--box on a video needs --frame N (the frame the box is drawn on)")


@app.command("segment")
def segment_cmd(
    image: Annotated[
        str,
        typer.Argument(
            help="NIfTI/NRRD/MHA file, DICOM folder or .zip, CVPR .npz (without a prompt: its boxes); a 2D "
            ".png/.jpg/.tif/.bmp/.dcm; or a video / DICOM cine."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="Label map (.nii.gz, .nrrd, .mha; .npz: CVPR segs + grid; .dcm: DICOM-SEG; a 2D image: .png); "
            "video: masks/ or .npz.",
        ),
    ],
    box: Annotated[
        list[str] | None,
        typer.Option(
            help="I0,J0,I1,J1 on --slice (inclusive voxels); a 2D image: X0,Y0,X1,Y1 (repeat: one label each); "
            "video: X0,Y0,X1,Y1 on --frame."
        ),
    ] = None,
    slice_: Annotated[int | None, typer.Option("--slice", help="Slice index of --box along --axis.")] = None,
    frame: Annotated[
        int | None, typer.Option(help="Video / DICOM cine: frame of --box and --mask (0-based); -o masks/ or .npz.")
    ] = None,
    frames: Annotated[
        str | None,
        typer.Option(
            "--frames",
            help="Video: walk / track only frames FIRST,LAST (inclusive; every prompt must lie in it); frames "
            "outside are written as empty masks and the sidecar's walk_range records the range.",
        ),
    ] = None,
    box3d: Annotated[str | None, typer.Option(help="I0,J0,K0,I1,J1,K1 (inclusive voxels).")] = None,
    point: Annotated[
        list[str] | None,
        typer.Option(help="I,J,K or I,J,K,neg; a 2D image: X,Y or X,Y,neg (video: X,Y,FRAME[,neg]); repeatable."),
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
    axis: Annotated[
        str | None,
        typer.Option(help="Propagation axis: i, j, k, axial, coronal, sagittal (default k; --prompts: the file's)."),
    ] = None,
    window: Annotated[str | None, typer.Option(help="CT window: abdomen|lung|brain|bone|mediastinum|L,W.")] = None,
    modality: Annotated[str, typer.Option(help="auto, CT, MR, PET or other.")] = "auto",
    label: Annotated[int, typer.Option(help="Label value written for the object.")] = 1,
    overlay: Annotated[
        Path | None, typer.Option(help="Folder for overlay PNGs (video: an .mp4/.mov/.mkv/.avi to render).")
    ] = None,
    overlay_convention: Annotated[
        str,
        typer.Option(help="Overlay PNGs: radiological (patient's right on the screen's left) or neurological."),
    ] = "radiological",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    precision: Annotated[
        str, typer.Option(help="auto, fp32 or bf16 (autocast); auto = bf16 for sam2 on CUDA, fp32 otherwise.")
    ] = "auto",
    backend: Annotated[
        str,
        typer.Option(
            help="Image encoder: auto, torch or openvino (CPU, fp32; every engine); auto = openvino if installed."
        ),
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
    from volsam.cli.parsing import parse_box, parse_box3d, parse_frame_range, parse_image_point, parse_point
    from volsam.io.video import is_video_input
    from volsam.jobs.request import SegmentRequest

    video = is_video_input(image)
    if frame is not None and not video:
        raise PromptError(f"--frame applies to videos and DICOM cine files, not to {image}: use --slice for volumes")
    if frames is not None and not video:
        raise PromptError(f"--frames applies to videos and DICOM cine files, not to {image}: use --box3d for volumes")
    request = SegmentRequest(  # every path below refuses a bad value here, with the same line
        engine=engine,
        model=model,
        device=device,
        precision=precision,
        backend=backend,
        strategy=strategy,
        absent_frames=absent_frames,
        full_range=full_range,
        axis=axis,
        modality=modality,
        window=window,
        label=label,
        output_format=output_format,
        overlay_convention=overlay_convention,
    )
    if video:
        volume_only = {
            "--slice": slice_ is not None,
            "--box3d": box3d is not None,
            "--prompts": prompts_file is not None,
            "--axis": axis is not None,
            "--window": window is not None,
            "--modality": modality != "auto",
            "--series": series is not None,
            "--channel": channel is not None,
            "--format": output_format != "auto",
            "--overlay-convention": overlay_convention != "radiological",
        }
        if box and len(box) > 1:
            raise PromptError("a video takes one --box (on --frame)")
        _check_video_flags(volume_only, box[0] if box else None, frame)
        prompts = ([parse_box(box[0], frame)] if box else []) + [parse_point(p) for p in point or []]
        _run_video(image, prompts, output, request, mask, frame, overlay, parse_frame_range(frames) if frames else None)
        return
    if prompts_file is not None:
        if box or box3d is not None or point or mask is not None or slice_ is not None:
            raise PromptError("--prompts replaces --box, --slice, --box3d, --point and --mask: give one or the other")
        if label != 1:
            raise PromptError("--label does not apply to --prompts: the file gives each object its label")
        _run_prompts_file(image, prompts_file, output, request, overlay, series, channel)
        return
    boxes = [parse_box(text, slice_, planar=True) for text in box or []]
    if slice_ is not None and not boxes:
        raise PromptError("--slice goes with --box")
    points = [parse_image_point(p) for p in point or []]
    planar = (bool(boxes) and slice_ is None) or any(flat for _, flat in points)
    objects = None
    prompts: list = []
    if len(boxes) > 1:
        if points or box3d is not None or mask is not None:
            raise PromptError("several --box make one object each: --point, --box3d and --mask go with one --box")
        objects = [[b] for b in boxes]
    else:
        prompts = boxes + ([parse_box3d(box3d)] if box3d is not None else []) + [p for p, _ in points]
    if not prompts and objects is None and mask is None and not image.lower().endswith(".npz"):
        raise PromptError("give a prompt: --box with --slice (none for a 2D image), --box3d, --point or --mask")
    _run_segment(prompts, image, output, request, mask, overlay, series, channel, objects, planar)
