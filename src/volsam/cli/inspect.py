"""``volsam info`` and ``volsam demo``: look at an image or video; segment the demo case."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from volsam.cli.app import app, progress_display


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
    from volsam.jobs.demo import demo_case, run_demo

    box = demo_case().middle_box
    typer.echo(
        f"demo: MNI152 2009 T1 (from nilearn) with an inserted dark lesion; engine medsam-lite; one box "
        f"{box.u0},{box.v0},{box.u1},{box.v1} on axial slice {box.slice}"
    )
    with progress_display() as progress:
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
