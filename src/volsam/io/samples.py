"""Sample images that ship inside installed wheels (real anatomy, offline).

Found through ``importlib.metadata`` -- the packages are never imported (nilearn would pull pandas and
scikit-learn; we only need its data files).
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from volsam.core.errors import InputError

_MNI_DIR = "nilearn/datasets/data"
_MNI_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
INSTALL_HINT = "pip install --no-deps nilearn==0.14.1"


def mni152_path(kind: str = "t1") -> Path:
    """Path of the MNI152 2009 template file ``kind`` (t1, gm, wm) inside the installed nilearn wheel.

    The T1 is 197x233x189 voxels (i, j, k) at 1 mm, skull-stripped, intensities 0..255.
    """
    if kind not in _MNI_FILES:
        raise InputError(f"unknown MNI152 image {kind!r}; choose one of {sorted(_MNI_FILES)}")
    try:
        dist = metadata.distribution("nilearn")
    except metadata.PackageNotFoundError as exc:
        raise InputError(f"the MNI152 sample needs the nilearn wheel: {INSTALL_HINT}") from exc
    path = Path(str(dist.locate_file(f"{_MNI_DIR}/{_MNI_FILES[kind]}")))
    if not path.is_file():
        raise InputError(f"MNI152 sample not found at {path}; reinstall with: {INSTALL_HINT}")
    return path
