"""``volsam models list|convert|download``: the model catalogue and checkpoint conversion."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from volsam.cli.app import app

models_app = typer.Typer(
    help="Known models; convert SAM / MedSAM / SAM 2 / MedSAM2 checkpoints; download from the hub.",
    no_args_is_help=True,
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
    checkpoint: Annotated[
        Path,
        typer.Argument(help="Meta SAM (sam_vit_*.pth), MedSAM (medsam_vit_b.pth), SAM 2 / 2.1 or MedSAM2 .pt file."),
    ],
    output_dir: Annotated[Path, typer.Argument(help="transformers directory to create.")],
    config: Annotated[
        str | None,
        typer.Option(
            help="sam-vit-b, medsam-vit-b, medsam2, sam2.1-hiera-tiny, ... to check the weights against "
            "(default: detected from the weights and file name)."
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace OUTPUT_DIR if it exists.")] = False,
) -> None:
    """Convert a Meta / MedSAM / MedSAM2 checkpoint to a transformers directory that --model accepts."""
    from volsam.engines.checkpoints import convert_checkpoint

    held = convert_checkpoint(checkpoint, output_dir, config=config, overwrite=overwrite)
    typer.echo(f"{checkpoint} ({held}) -> {output_dir}")


@models_app.command("download")
def models_download_cmd(
    name: Annotated[str, typer.Argument(help="A name from `volsam models list`, e.g. sam2.1-hiera-tiny, sam-vit-b.")],
    output_dir: Annotated[
        Path | None, typer.Option("--output-dir", "-o", help="Default: the local models directory.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the directory if it exists.")] = False,
) -> None:
    """Download a transformers-format SAM 2 / SAM / MedSAM model from the Hugging Face hub."""
    from volsam.engines.catalog import model_info, models_dir
    from volsam.engines.sam2.download import download

    info = model_info(name)
    out = download(info, output_dir or models_dir() / info.name, overwrite=overwrite)
    typer.echo(f"{info.hub_id} -> {out}")
