"""Hypothesis against every reader: random bytes, truncated files and flipped bytes in each format volsam reads
either give a Volume or raise a typed InputError -- never another exception, never a crash -- when read as the
server reads uploads (``max_bytes`` and ``untrusted``)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.dicom import write_series
from volsam.core.errors import InputError
from volsam.core.volume import Volume
from volsam.io import read_volume, write_volume

LIMIT = 32 * 2**20  # what a small server would accept (--max-image-mb 32)
FORMATS = ["scan.nii.gz", "scan.nii", "scan.nrrd", "scan.mha", "scan.npz", "series.zip", "slice.dcm"]
FUZZ = settings(
    max_examples=int(os.environ.get("VOLSAM_FUZZ_EXAMPLES", "40")),
    deadline=None,
    derandomize=os.environ.get("VOLSAM_FUZZ_EXAMPLES") is None,  # fixed cases in make test: never flaky
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _image() -> Volume:
    rng = np.random.default_rng(3)
    array = rng.integers(-100, 400, size=(3, 12, 10)).astype(np.int16)
    return Volume(array, spacing=(0.8, 0.9, 2.5), origin=(1.0, -2.0, 3.0))


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> dict[str, bytes]:
    """One small valid file of each format, as bytes."""
    folder = tmp_path_factory.mktemp("valid")
    image = _image()
    out = {}
    for name in ("scan.nii.gz", "scan.nii", "scan.nrrd", "scan.mha"):
        out[name] = write_volume(image, folder / name).read_bytes()
    np.savez_compressed(folder / "scan.npz", imgs=image.array.astype(np.uint8), spacing=np.array([2.5, 0.9, 0.8]))
    out["scan.npz"] = (folder / "scan.npz").read_bytes()
    paths = write_series(image, folder / "series")
    with zipfile.ZipFile(folder / "series.zip", "w") as zf:
        for p in paths:
            zf.write(p, f"series/{p.name}")
    out["series.zip"] = (folder / "series.zip").read_bytes()
    out["slice.dcm"] = paths[0].read_bytes()
    return out


def _read(tmp_path: Path, name: str, blob: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(blob)
    try:
        volume = read_volume(path, max_bytes=LIMIT, untrusted=True)
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    assert volume.array.nbytes <= LIMIT and volume.array.ndim == 3


def test_every_valid_sample_reads(valid, tmp_path):
    for name, blob in valid.items():
        path = tmp_path / name
        path.write_bytes(blob)
        assert read_volume(path, max_bytes=LIMIT, untrusted=True).array.size >= 10 * 12, name


@pytest.mark.parametrize("name", FORMATS)
@FUZZ
@given(blob=st.binary(min_size=0, max_size=2048))
def test_random_bytes(valid, tmp_path, name, blob):
    _read(tmp_path, name, blob)


@pytest.mark.parametrize("name", FORMATS)
@FUZZ
@given(cut=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_files(valid, tmp_path, name, cut):
    blob = valid[name]
    _read(tmp_path, name, blob[: int(len(blob) * cut)])


@pytest.mark.parametrize("name", FORMATS)
@FUZZ
@given(data=st.data())
def test_flipped_bytes(valid, tmp_path, name, data):
    blob = bytearray(valid[name])
    head = min(len(blob), 1024)  # the headers: where a flipped byte changes what the reader believes
    for _ in range(data.draw(st.integers(1, 8))):
        where = data.draw(st.integers(0, head - 1))
        blob[where] = data.draw(st.integers(0, 255))
    _read(tmp_path, name, bytes(blob))
