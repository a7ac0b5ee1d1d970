"""``python -m volsam`` runs the command line."""

import sys

from volsam.cli.main import run

sys.exit(run())
