"""Unpacking a .zip safely: no path traversal, no links, size and count limits, always cleaned up."""

from __future__ import annotations

import stat
import zipfile

import numpy as np
import pytest

from tests.support.dicom import write_series
from volsam.core.errors import InputError
from volsam.core.volume import Volume
from volsam.io import archive, read_volume


@pytest.fixture()
def scratch(tmp_path, monkeypatch):
    """Temporary folders go here, so a test can see that nothing is left behind."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    return folder


def _zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("name", ["../evil.dcm", "a/../../evil.dcm", "/etc/evil.dcm", "C:/evil.dcm", "..\\evil.dcm"])
def test_path_traversal_is_refused(tmp_path, scratch, name):
    bad = _zip(tmp_path / "slip.zip", {"ok/IM1.dcm": b"x", name: b"evil"})
    with pytest.raises(InputError) as exc:
        read_volume(bad)
    assert "unsafe zip entry" in str(exc.value) and "slip.zip" in str(exc.value)
    assert not (tmp_path / "evil.dcm").exists()
    assert list(scratch.iterdir()) == []


def test_symbolic_link_entry_is_refused(tmp_path, scratch):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("series/IM1.dcm")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InputError, match="symbolic link"):
        read_volume(path)
    assert list(scratch.iterdir()) == []


def test_too_many_files(tmp_path, scratch, monkeypatch):
    monkeypatch.setattr(archive, "MAX_FILES", 3)
    path = _zip(tmp_path / "many.zip", {f"f{i}.dcm": b"x" for i in range(4)})
    with pytest.raises(InputError, match="4 files, more than the limit of 3"):
        read_volume(path)


def test_too_many_bytes_declared(tmp_path, scratch, monkeypatch):
    monkeypatch.setattr(archive, "MAX_BYTES", 1000)
    path = _zip(tmp_path / "big.zip", {"a.dcm": b"\0" * 600, "b.dcm": b"\0" * 600})
    with pytest.raises(InputError, match="1200 bytes, more than the limit of 1000"):
        read_volume(path)
    assert list(scratch.iterdir()) == []


def test_too_many_bytes_inflated_despite_the_header(tmp_path, scratch, monkeypatch):
    # a zip bomb may declare small sizes: the bytes actually written are counted too
    monkeypatch.setattr(archive, "MAX_BYTES", 10_000)
    path = _zip(tmp_path / "bomb.zip", {"a.dcm": b"\0" * 20_000})
    real_infolist = zipfile.ZipFile.infolist

    def lying_infolist(self):
        infos = real_infolist(self)
        for info in infos:
            info.file_size = 10
        return infos

    monkeypatch.setattr(zipfile.ZipFile, "infolist", lying_infolist)
    with pytest.raises(InputError, match="bomb.zip"):
        read_volume(path)
    assert list(scratch.iterdir()) == []


def test_corrupt_zip(tmp_path, scratch):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(InputError, match="broken.zip"):
        read_volume(path)


def test_zip_without_dicom(tmp_path, scratch):
    path = _zip(tmp_path / "docs.zip", {"readme.txt": b"hello", "sub/notes.md": b"# notes"})
    with pytest.raises(InputError, match=r"docs\.zip: no DICOM images found"):
        read_volume(path)
    assert list(scratch.iterdir()) == []


def test_unpacked_zip_is_removed_after_use(tmp_path, scratch):
    write_series(Volume(np.ones((2, 3, 4), np.uint16)), tmp_path / "s")
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in (tmp_path / "s").iterdir():
            zf.write(f, f"s/{f.name}")
    with archive.unpacked_zip(path) as folder:
        unpacked = sorted(p.name for p in (folder / "s").iterdir())
        assert unpacked == sorted(p.name for p in (tmp_path / "s").iterdir())
    assert not folder.exists()
