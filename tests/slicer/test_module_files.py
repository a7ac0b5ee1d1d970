"""The 3D Slicer module's files, checked with volsam's own venv (no slicer-core needed): ``volsam slicer-path``
finds them, the CMake lists name every script, every file parses as Slicer's Python 3.9 reads it, and the
logic imports only the standard library, numpy, vtk and Slicer's MRML (nothing Qt, no volsam, no torch)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("volsam", reason="runs in volsam's own venv (make test); the slicer-core venv has no volsam")

from volsam.cli import slicer as slicer_cli  # noqa: E402
from volsam.core.errors import InputError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "slicer"
MODULE = EXTENSION / "VolSAM"


def test_slicer_path_prints_the_module_folder_of_a_source_checkout():
    done = subprocess.run(
        [sys.executable, "-m", "volsam", "slicer-path"], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == str(MODULE) and done.stderr == ""
    done = subprocess.run(
        [sys.executable, "-m", "volsam", "slicer-path", "--extension"], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == str(EXTENSION)


def test_slicer_path_finds_installed_data_files_and_says_where_it_looked(tmp_path, monkeypatch):
    data = tmp_path / "prefix"
    installed = data / "share" / "volsam" / "slicer"
    (installed / "VolSAM").mkdir(parents=True)
    (installed / "VolSAM" / "VolSAM.py").write_text("")
    monkeypatch.setattr(slicer_cli, "__file__", str(tmp_path / "site-packages" / "volsam" / "cli" / "slicer.py"))
    monkeypatch.setattr(slicer_cli.sysconfig, "get_path", lambda name: str(data))
    assert slicer_cli.slicer_extension() == installed
    monkeypatch.setattr(slicer_cli.sysconfig, "get_path", lambda name: str(tmp_path / "elsewhere"))
    monkeypatch.setattr(slicer_cli.sys, "prefix", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(slicer_cli.site, "getuserbase", lambda: str(tmp_path / "user"))
    with pytest.raises(InputError, match="has no 3D Slicer module") as caught:
        slicer_cli.slicer_extension()
    assert "\n" not in str(caught.value) and str(tmp_path / "user") in str(caught.value)


def test_a_wheel_carries_the_module_and_slicer_path_finds_it_after_a_plain_install(tmp_path):
    """pip wheel of the working tree (its tracked files, copied: no build/ left in the checkout), installed
    without the source tree into a fresh venv: the wheel holds every tracked file of slicer/ as data files and
    ``volsam slicer-path`` of that installation prints ``<venv>/share/volsam/slicer/VolSAM``."""
    import shutil
    import sysconfig
    import zipfile

    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    source = tmp_path / "source"
    for name in filter(None, tracked.decode().split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", str(source),
         "-w", str(wheels)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = wheels.glob("volsam-*.whl")
    prefix = "volsam-0.1.0.data/data/share/volsam/slicer/"
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n.removeprefix(prefix) for n in archive.namelist() if n.startswith(prefix)}
    in_git = {n.removeprefix("slicer/") for n in tracked.decode().split("\0") if n.startswith("slicer/")}
    assert shipped == in_git and "VolSAM/VolSAMLib/logic.py" in shipped

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # volsam's dependencies from this venv, after the installed wheel (a .pth line: no editable finder)
    (Path(site) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    done = subprocess.run(
        [str(python), "-c", "import volsam, sys; print(volsam.__file__); sys.argv = ['volsam', 'slicer-path']; "
         "from volsam.cli.main import run; run()"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    imported, printed = done.stdout.split()
    assert Path(imported).is_relative_to(venv)  # the installed copy, not the checkout
    assert Path(printed) == venv / "share" / "volsam" / "slicer" / "VolSAM"
    assert (Path(printed) / "VolSAMLib" / "logic.py").read_bytes() == (MODULE / "VolSAMLib" / "logic.py").read_bytes()


def test_the_cmake_lists_name_every_script_and_resource():
    module_cmake = (MODULE / "CMakeLists.txt").read_text()
    listed = set(re.findall(r"\$\{MODULE_NAME\}(\S*\.py)", module_cmake))  # ".py", "Lib/logic.py", ...
    on_disk = {str(p.relative_to(MODULE)).removeprefix("VolSAM") for p in MODULE.rglob("*.py")}
    assert listed == on_disk
    assert (MODULE / "Resources" / "Icons" / "VolSAM.png").is_file()
    assert "add_subdirectory(VolSAM)" in (EXTENSION / "CMakeLists.txt").read_text()
    assert "slicer_add_python_unittest(SCRIPT ${MODULE_NAME}.py)" in module_cmake


@pytest.mark.parametrize("path", sorted(MODULE.rglob("*.py")), ids=lambda p: p.name)
def test_every_file_parses_as_slicers_python_3_9(path):
    ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted((MODULE / "VolSAMLib").glob("*.py")), ids=lambda p: p.name)
def test_the_logic_needs_only_the_standard_library_numpy_vtk_and_slicers_mrml(path):
    for name in _imports(path):
        top = name.split(".")[0]
        assert top in {"numpy", "vtk", "slicer"} or top in sys.stdlib_module_names, f"{path.name} imports {name}"
        assert name not in ("slicer.util", "slicer.ScriptedLoadableModule"), f"{path.name} imports {name}"
    used = {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "slicer"
    }
    banned = used & {"app", "modules", "util", "mrmlScene", "qMRMLSegmentEditorWidget"}
    assert not banned, f"{path.name} uses slicer.{banned}: absent without Qt (slicer-core)"


def test_the_widget_imports_the_logic_and_no_volsam():
    imports = _imports(MODULE / "VolSAM.py")
    assert "VolSAMLib.logic" in imports
    assert not any(name.split(".")[0] in ("volsam", "torch", "httpx", "requests") for name in imports)


def test_the_panel_binds_the_anchors_shortcuts_to_existing_handlers():
    """B box, P point, T toggle +/-, E next segment, R reset, Ctrl+Z / Ctrl+Y undo / redo (as nnInteractive's
    panel), bound in ``enter`` to methods and buttons the widget has. (Whether Qt delivers them is for the
    real-Slicer test; here only the binding is checked.)"""
    tree = ast.parse((MODULE / "VolSAM.py").read_text())
    widget = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "VolSAMWidget")
    methods = {n.name for n in widget.body if isinstance(n, ast.FunctionDef)}
    enter = next(n for n in widget.body if isinstance(n, ast.FunctionDef) and n.name == "enter")
    table = next(
        n.value
        for n in ast.walk(enter)
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Dict) and ast.unparse(n.targets[0]) == "keys"
    )
    keys = {ast.literal_eval(k): ast.unparse(v) for k, v in zip(table.keys, table.values)}
    expected = {
        "b": "self.boxButton.click", "p": "self.pointButton.click", "t": "self.onToggleSign",
        "e": "self.onNextSegment", "r": "self.onReset", "Ctrl+Z": "self.onUndo", "Ctrl+Y": "self.onRedo",
    }  # fmt: skip
    assert {k: keys.get(k) for k in expected} == expected
    source = ast.unparse(widget)
    for handler in keys.values():
        name = handler.split(".")[1]
        assert name in methods or f"self.{name} = " in source, f"{handler} is not defined by the widget"
    assert "qt.QShortcut(qt.QKeySequence(key), slicer.util.mainWindow())" in ast.unparse(enter)
