"""The ``volsam`` command line (typer)."""
