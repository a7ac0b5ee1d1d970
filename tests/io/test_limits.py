"""Decoded-size limits (``max_bytes``) are checked from what a file declares, before its voxels are inflated,
and ``untrusted`` files may not send the reader to another file of the machine."""

from __future__ import annotations

import gzip
import io
import struct
import zipfile

import numpy as np
import pydicom
import pytest

from tests.support.dicom import write_series
from volsam.core.errors import ImageTooLarge, InputError
from volsam.core.volume import Volume
from volsam.io import read_volume, write_volume

MB = 2**20
BIG = (512, 1024, 1024)  # k, j, i: the 1024 x 1024 x 512 header


def nifti_header(shape_ijk: tuple[int, ...], datatype: int = 16, bitpix: int = 32) -> bytes:
    """A NIfTI-1 single-file header (348 bytes + 4 extension bytes) for ``shape_ijk``."""
    h = bytearray(348)
    struct.pack_into("<i", h, 0, 348)
    dims = [len(shape_ijk), *shape_ijk] + [1] * (7 - len(shape_ijk))
    struct.pack_into("<8h", h, 40, *dims)
    struct.pack_into("<hh", h, 70, datatype, bitpix)
    struct.pack_into("<8f", h, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<f", h, 108, 352.0)
    struct.pack_into("<fff", h, 112, 1.0, 0.0, 0.0)
    h[344:348] = b"n+1\0"
    return bytes(h) + b"\0\0\0\0"


def test_a_nifti_that_declares_more_than_the_limit_is_refused_before_it_is_inflated(tmp_path, monkeypatch):
    path = tmp_path / "bomb.nii.gz"
    path.write_bytes(gzip.compress(nifti_header(BIG[::-1]) + b"\0" * MB))  # 1 MB of the 2 GB it declares
    inflated = []
    real_open = gzip.open
    monkeypatch.setattr(gzip, "open", lambda *a, **k: inflated.append(a) or real_open(*a, **k))
    with pytest.raises(ImageTooLarge) as exc:
        read_volume(path, max_bytes=512 * MB)
    assert "2,048 MB" in str(exc.value) and "limit of 512 MB" in str(exc.value) and exc.value.http_status == 413
    assert len(inflated) == 1  # the header only: the voxels were never decompressed (nor counted)
    with pytest.raises(InputError, match="truncated"):  # without a limit: refused as truncated, as before
        read_volume(path)


def test_images_within_the_limit_read_and_the_limit_counts_decoded_bytes(tmp_path):
    image = Volume(np.zeros((8, 32, 32), np.float32))  # 32 KiB decoded, a few hundred bytes compressed
    for name in ("a.nii.gz", "a.nrrd", "a.mha"):
        path = write_volume(image, tmp_path / name)
        assert read_volume(path, max_bytes=32 * 1024, untrusted=True).array.shape == (8, 32, 32)
        with pytest.raises(ImageTooLarge):
            read_volume(path, max_bytes=32 * 1024 - 1)


@pytest.mark.parametrize("name", ["bomb.nrrd", "bomb.mha"])
def test_nrrd_and_metaimage_headers_are_checked_before_the_voxels(tmp_path, name):
    payload = gzip.compress(b"\0" * MB)
    if name.endswith(".nrrd"):
        head = "NRRD0004\ntype: float\ndimension: 3\nsizes: 1024 1024 512\nencoding: gzip\nendian: little\n\n"
    else:
        head = (
            "ObjectType = Image\nNDims = 3\nDimSize = 1024 1024 512\nElementType = MET_FLOAT\n"
            f"CompressedData = True\nCompressedDataSize = {len(payload)}\nElementDataFile = LOCAL\n"
        )
    path = tmp_path / name
    path.write_bytes(head.encode() + payload)
    with pytest.raises(ImageTooLarge, match="2,048 MB"):
        read_volume(path, max_bytes=512 * MB)


def test_an_npz_that_declares_a_huge_array_is_refused_from_its_npy_header(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": BIG})
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("imgs.npy", header.getvalue() + b"\0" * MB)
    with pytest.raises(ImageTooLarge, match="2,048 MB"):
        read_volume(path, max_bytes=512 * MB)
    with zipfile.ZipFile(tmp_path / "spacing.npz", "w") as zf:
        zf.writestr("imgs.npy", _npy(np.zeros((2, 3, 4), np.uint8)))
        zf.writestr("spacing.npy", _npy(np.zeros(10**6)))
    with pytest.raises(InputError, match="'spacing' declares"):
        read_volume(tmp_path / "spacing.npz", max_bytes=512 * MB)


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_a_dicom_whose_rows_columns_and_frames_exceed_the_limit_is_refused_before_decoding(tmp_path):
    image = Volume(np.zeros((2, 8, 8), np.int16))
    paths = write_series(image, tmp_path / "series")
    ds = pydicom.dcmread(paths[0])
    ds.Rows, ds.Columns, ds.NumberOfFrames = 4096, 4096, 64  # 2 GB of int16 declared over 128 bytes of pixels
    ds.save_as(tmp_path / "bomb.dcm")
    with pytest.raises(ImageTooLarge, match="2,048 MB"):
        read_volume(tmp_path / "bomb.dcm", max_bytes=512 * MB)
    with pytest.raises(ImageTooLarge, match="limit of 0 MB"):  # a series: summed over its files
        read_volume(tmp_path / "series", max_bytes=255)
    assert read_volume(tmp_path / "series", max_bytes=256).array.shape == (2, 8, 8)


def test_untrusted_nrrd_and_metaimage_may_not_read_another_file(tmp_path):
    secret = tmp_path / "secret.raw"
    secret.write_bytes(bytes(range(64)))
    nrrd = tmp_path / "peek.nrrd"
    nrrd.write_text(f"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 4 4 4\nencoding: raw\ndata file: {secret}\n\n")
    mha = tmp_path / "peek.mha"
    head = "ObjectType = Image\nNDims = 3\nDimSize = 4 4 4\nElementType = MET_UCHAR\n"
    mha.write_text(f"{head}ElementDataFile = {secret}\n")
    for path in (nrrd, mha):
        assert read_volume(path).array.ravel().tolist() == list(range(64))  # what the check is for
        with pytest.raises(InputError, match="in another file"):
            read_volume(path, untrusted=True)
