"""VolSAM: segment a volume in 3D Slicer from a box, clicks or a painted slice, with a ``volsam serve`` server.

This file is the Qt layer only: the panel, the slice-view mouse handling, the shortcuts and the test. What
the buttons do is in ``VolSAMLib/logic.py`` (:class:`VolSAMLib.logic.VolSAMLogic`), which needs no Qt.
"""

from __future__ import annotations

import logging
import os

import ctk
import numpy as np
import qt
import vtk
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin
from VolSAMLib.logic import PALETTE, WINDOW_PRESETS, ServerUnreachable, VolSAMError, VolSAMLogic

import slicer

SETTINGS = "VolSAM/"
MODALITIES = ("auto", "CT", "MR", "PET")
AXES = ("k", "j", "i", "axial", "coronal", "sagittal")


def startup_environment():
    """The environment before Slicer's launcher changed it (its PYTHONHOME / PYTHONPATH would break volsam's own
    Python); None where this Slicer lacks ``slicer.util.startupEnvironment`` (the logic then drops those)."""
    try:
        return slicer.util.startupEnvironment()
    except AttributeError:
        return None


class VolSAM(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "VolSAM"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["volsam developers"]
        self.parent.helpText = (
            "Prompt one slice, segment the whole volume: draw a box (B), click inside / outside (P, T toggles "
            "+/-) or paint a slice and send it as a mask (M); the object propagates through the volume on a "
            "volsam server (volsam serve). E: next segment, R: reset the segment, V: show / hide it, "
            "Ctrl+Z / Ctrl+Y: undo / redo."
        )
        self.parent.acknowledgementText = "volsam: SAM 2-family and LiteMedSAM models behind one session protocol."


class VolSAMWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: server, model, the segment editor (volume, segmentation, segments) and the prompt tools."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.handle = None
        self.tool = None  # "box", "point" or None
        self.positive = True
        self._drag = None  # (slice widget, RAS of the press, preview curve node)
        self._observers = []  # (interactor, {event: tag})
        self._last_slice_widget = None
        self._shortcuts = []
        self._busy = False

    # -- the panel --------------------------------------------------------------------------------------------
    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        settings = qt.QSettings()

        server = ctk.ctkCollapsibleButton()
        server.text = "Server"
        self.layout.addWidget(server)
        form = qt.QFormLayout(server)
        self.urlEdit = qt.QLineEdit(settings.value(SETTINGS + "url", "http://127.0.0.1:8000"))
        self.tokenEdit = qt.QLineEdit()
        self.tokenEdit.setEchoMode(qt.QLineEdit.Password)
        self.tokenEdit.placeholderText = "none (a server on this computer needs none)"
        self.executableEdit = qt.QLineEdit(settings.value(SETTINGS + "executable", ""))
        self.executableEdit.placeholderText = "volsam program (blank: volsam on the PATH)"
        self.connectButton = qt.QPushButton("Connect")
        self.startButton = qt.QPushButton("Start a local server")
        buttons = qt.QHBoxLayout()
        buttons.addWidget(self.connectButton)
        buttons.addWidget(self.startButton)
        form.addRow("URL:", self.urlEdit)
        form.addRow("Token:", self.tokenEdit)
        form.addRow("volsam:", self.executableEdit)
        form.addRow(buttons)

        model = ctk.ctkCollapsibleButton()
        model.text = "Model"
        self.layout.addWidget(model)
        form = qt.QFormLayout(model)
        self.engineCombo = qt.QComboBox()
        self.engineCombo.addItem("medsam-lite")
        self.modelCombo = qt.QComboBox()
        self.modelCombo.addItem("(default)")
        self.modalityCombo = qt.QComboBox()
        self.modalityCombo.addItems(list(MODALITIES))
        self.windowCombo = qt.QComboBox()
        self.windowCombo.addItems(["(modality default)", *WINDOW_PRESETS])
        self.windowCombo.toolTip = "CT window for the display and the model (a new window uploads the volume again)"
        self.axisCombo = qt.QComboBox()
        self.axisCombo.addItems(list(AXES))
        self.axisCombo.toolTip = "The axis objects propagate along; boxes are drawn on slices across it"
        self.alignCheck = qt.QCheckBox("Rotate the slice views to the volume's planes")
        self.alignCheck.checked = True
        form.addRow("Engine:", self.engineCombo)
        form.addRow("Model:", self.modelCombo)
        form.addRow("Modality:", self.modalityCombo)
        form.addRow("Window:", self.windowCombo)
        form.addRow("Slice axis:", self.axisCombo)
        form.addRow(self.alignCheck)

        self.editor = slicer.qMRMLSegmentEditorWidget()
        self.editor.setMRMLScene(slicer.mrmlScene)
        self.editor.setMRMLSegmentEditorNode(self._editor_node())
        self.layout.addWidget(self.editor)

        prompts = ctk.ctkCollapsibleButton()
        prompts.text = "Prompts"
        self.layout.addWidget(prompts)
        grid = qt.QGridLayout(prompts)
        self.boxButton = self._tool_button("Box (B)", "box")
        self.pointButton = self._tool_button("Point (P)", "point")
        self.signButton = qt.QPushButton("Positive (T)")
        self.maskButton = qt.QPushButton("Mask from slice (M)")
        self.nextButton = qt.QPushButton("Next segment (E)")
        self.resetButton = qt.QPushButton("Reset segment (R)")
        self.undoButton = qt.QPushButton("Undo (Ctrl+Z)")
        self.redoButton = qt.QPushButton("Redo (Ctrl+Y)")
        for n, button in enumerate(
            (self.boxButton, self.pointButton, self.signButton, self.maskButton,
             self.nextButton, self.resetButton, self.undoButton, self.redoButton)
        ):  # fmt: skip
            grid.addWidget(button, n // 2, n % 2)
        self.progressBar = qt.QProgressBar()
        self.progressBar.setRange(0, 1)
        self.statusLabel = qt.QLabel("Connect to a volsam server, choose a volume, draw a box.")
        self.statusLabel.wordWrap = True
        self.layout.addWidget(self.progressBar)
        self.layout.addWidget(self.statusLabel)
        self.layout.addStretch(1)

        self.connectButton.clicked.connect(self.onConnect)
        self.startButton.clicked.connect(self.onStartServer)
        self.engineCombo.currentTextChanged.connect(self._fill_models)
        self.windowCombo.currentTextChanged.connect(self.onWindow)
        self.signButton.clicked.connect(self.onToggleSign)
        self.maskButton.clicked.connect(self.onMask)
        self.nextButton.clicked.connect(self.onNextSegment)
        self.resetButton.clicked.connect(self.onReset)
        self.undoButton.clicked.connect(self.onUndo)
        self.redoButton.clicked.connect(self.onRedo)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneClose)
        self._caps = {}

    def _tool_button(self, text, tool):
        button = qt.QPushButton(text)
        button.checkable = True
        button.toggled.connect(lambda on: self._set_tool(tool if on else None))
        return button

    @staticmethod
    def _editor_node():
        node = slicer.mrmlScene.GetSingletonNode("VolSAM", "vtkMRMLSegmentEditorNode")
        if node is None:
            node = slicer.mrmlScene.CreateNodeByClass("vtkMRMLSegmentEditorNode")
            node.UnRegister(None)
            node.SetSingletonTag("VolSAM")
            node = slicer.mrmlScene.AddNode(node)
        return node

    def enter(self):
        self._install_observers()
        if slicer.util.mainWindow() is None:  # Slicer --no-main-window: no views, no keys
            return
        keys = {
            "b": self.boxButton.click, "p": self.pointButton.click, "t": self.onToggleSign, "m": self.onMask,
            "e": self.onNextSegment, "r": self.onReset, "v": self.onToggleVisibility,
            "Ctrl+Z": self.onUndo, "Ctrl+Y": self.onRedo, "Ctrl+Shift+Z": self.onRedo,
        }  # fmt: skip
        for key, call in keys.items():
            shortcut = qt.QShortcut(qt.QKeySequence(key), slicer.util.mainWindow())
            shortcut.activated.connect(call)
            self._shortcuts.append(shortcut)

    def exit(self):
        self._set_tool(None)
        self._remove_observers()
        for shortcut in self._shortcuts:
            shortcut.setParent(None)
        self._shortcuts = []

    def cleanup(self):
        self.exit()
        self.removeObservers()
        if self.logic is not None:
            self.logic.close_all()
            self.logic.stop_local_server()

    def onSceneClose(self, caller=None, event=None):
        if self.logic is not None:
            self.logic.close_all()
        self.handle = None

    # -- server and model -------------------------------------------------------------------------------------
    def _new_logic(self):
        if self.logic is not None:
            self.logic.close_all()
        server = self.logic._server if self.logic is not None else None
        self.logic = VolSAMLogic(
            self.urlEdit.text.strip(), token=self.tokenEdit.text.strip() or None, progress=self._on_progress
        )
        self._sync_options()
        self.logic._server = server  # a server this panel started stays ours to stop
        self.handle = None
        qt.QSettings().setValue(SETTINGS + "url", self.urlEdit.text.strip())
        return self.logic

    def _sync_options(self):
        """The panel's model choices, for the next volume opened (a change opens a new session)."""
        self.logic.engine = self.engineCombo.currentText or "medsam-lite"
        self.logic.model = self.modelCombo.currentText if self.modelCombo.currentIndex > 0 else None
        self.logic.modality = self.modalityCombo.currentText
        self.logic.window = self.windowCombo.currentText if self.windowCombo.currentIndex > 0 else None
        self.logic.axis = self.axisCombo.currentText

    def onConnect(self):
        logic = self._new_logic()
        if self._guard(lambda: self._read_capabilities(logic)):
            self._status(f"Connected to volsam {logic.health().get('version', '')} at {logic.url}")

    def _read_capabilities(self, logic):
        self._caps = logic.capabilities()
        engines = [e["name"] for e in self._caps.get("engines", [])] or ["medsam-lite"]
        self.engineCombo.blockSignals(True)
        self.engineCombo.clear()
        self.engineCombo.addItems(engines)
        self.engineCombo.blockSignals(False)
        self._fill_models(self.engineCombo.currentText)

    def _fill_models(self, engine):
        self.modelCombo.clear()
        self.modelCombo.addItem("(default)")
        if self.logic is not None and self._caps:
            self.modelCombo.addItems(self.logic.models(self._caps, engine))

    def onStartServer(self):
        logic = self._new_logic()
        executable = self.executableEdit.text.strip() or None
        qt.QSettings().setValue(SETTINGS + "executable", executable or "")
        environment = startup_environment()
        self._status("Starting volsam serve (the model loads on the first volume)...")
        if self._guard(lambda: logic.start_local_server(executable, env=environment)):
            self.onConnect()

    def onWindow(self, text):
        volume = self.editor.sourceVolumeNode()
        if volume is not None and text in WINDOW_PRESETS:
            VolSAMLogic.apply_window(volume, text)

    # -- running a call -----------------------------------------------------------------------------------------
    def _status(self, text, error=False):
        self.statusLabel.text = text
        self.statusLabel.setStyleSheet("color: #c0392b" if error else "")

    def _on_progress(self, stage, frames):
        self.progressBar.setRange(0, 0)  # busy: the number of slices is not known in advance
        self.progressBar.setFormat(f"{stage}: {frames} slices" if frames else stage)
        self._status(f"{stage.capitalize()}... {frames} slices segmented" if frames else f"{stage.capitalize()}...")
        slicer.app.processEvents()

    def _guard(self, call):
        """Run ``call`` (busy cursor, progress, one message on failure); True when it succeeded."""
        if self._busy:
            return False
        self._busy = True
        qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
        try:
            call()
            return True
        except ServerUnreachable as exc:
            self._status(str(exc), error=True)
            slicer.util.errorDisplay(f"{exc}\nThe segmentation was not changed.")
        except VolSAMError as exc:
            self._status(str(exc), error=True)
        except Exception as exc:  # noqa: BLE001 -- shown in the panel and the log, never a silent failure
            logging.exception("VolSAM")
            self._status(f"{type(exc).__name__}: {exc}", error=True)
        finally:
            qt.QApplication.restoreOverrideCursor()
            self.progressBar.setRange(0, 1)
            self.progressBar.setValue(0)
            self._busy = False
        return False

    def _inputs(self):
        """(volume, segmentation node, handle), uploading the volume when it is new or changed."""
        volume = self.editor.sourceVolumeNode()
        if volume is None:
            raise VolSAMError("choose a volume in the panel's source volume selector")
        segmentation = self.editor.segmentationNode()
        if segmentation is None:
            segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "VolSAM segmentation")
            segmentation.CreateDefaultDisplayNodes()
            self.editor.setSegmentationNode(segmentation)
        if self.logic is None:
            self._new_logic()
        self._sync_options()
        handle = self.logic.open_volume(volume)  # the open session, or an upload when voxels or options changed
        if handle is not self.handle and self.alignCheck.checked:
            for slice_node in slicer.util.getNodesByClass("vtkMRMLSliceNode"):
                slice_node.RotateToVolumePlane(volume)
        self.handle = handle
        return volume, segmentation, handle

    def _current_segment(self):
        return self.editor.mrmlSegmentEditorNode().GetSelectedSegmentID() or None

    def _select(self, segment_id):
        if segment_id:
            self.editor.setCurrentSegmentID(segment_id)

    def _done(self, what):
        change = self.logic.last_change or {}
        frames = change.get("frames")
        where = f", slices {frames[0]}..{frames[1]}" if frames else ", no voxel changed"
        self._status(f"{what}{where} ({change.get('seconds', 0):.1f} s)")

    # -- prompts (also called by the test) --------------------------------------------------------------------------
    def promptBox(self, ras_a, ras_b):
        def call():
            _, segmentation, handle = self._inputs()
            segment_id = self.logic.add_box(handle, segmentation, ras_a, ras_b, segment_id=self._current_segment())
            self._select(segment_id)
            self._done("Box")

        return self._guard(call)

    def promptPoint(self, ras):
        def call():
            _, segmentation, handle = self._inputs()
            change = self.logic.add_point(handle, segmentation, self._current_segment(), ras, positive=self.positive)
            self._select(change["segment_id"])
            self._done("Positive click" if self.positive else "Negative click")

        return self._guard(call)

    def onMask(self):
        def call():
            _, segmentation, handle = self._inputs()
            segment_id = self._current_segment()
            if segment_id is None:
                raise VolSAMError("select the segment painted on this slice first")
            self.logic.add_mask(handle, segmentation, segment_id, self._slice_centre())
            self._done("Mask")

        return self._guard(call)

    def _slice_centre(self):
        """RAS of the centre of the slice view last used (the red one before any)."""
        widget = self._last_slice_widget or slicer.app.layoutManager().sliceWidget("Red")
        slice_to_ras = widget.mrmlSliceNode().GetSliceToRAS()
        return [slice_to_ras.GetElement(r, 3) for r in range(3)]

    def onUndo(self):
        if self.handle is not None:
            self._guard(lambda: (self.logic.undo(self.handle, self.editor.segmentationNode()), self._done("Undo")))

    def onRedo(self):
        if self.handle is not None:
            self._guard(lambda: (self.logic.redo(self.handle, self.editor.segmentationNode()), self._done("Redo")))

    def onReset(self):
        segment_id = self._current_segment()
        if self.handle is None or segment_id is None:
            return
        segmentation = self.editor.segmentationNode()
        if self.handle.ref(segmentation, segment_id) is None:
            self._status("This segment was not made by VolSAM: nothing to reset", error=True)
            return
        self._guard(lambda: (self.logic.reset(self.handle, segmentation, segment_id), self._done("Reset")))

    def onNextSegment(self):
        segmentation = self.editor.segmentationNode()
        if segmentation is None:
            return
        n = segmentation.GetSegmentation().GetNumberOfSegments() + 1
        colour = [c / 255.0 for c in PALETTE[(n - 1) % len(PALETTE)]]
        self._select(segmentation.GetSegmentation().AddEmptySegment("", f"object {n}", colour))
        self._status(f"Next prompts go to object {n}")

    def onToggleSign(self):
        self.positive = not self.positive
        self.signButton.text = "Positive (T)" if self.positive else "Negative (T)"

    def onToggleVisibility(self):
        segmentation, segment_id = self.editor.segmentationNode(), self._current_segment()
        if segmentation is not None and segment_id and segmentation.GetDisplayNode() is not None:
            display = segmentation.GetDisplayNode()
            display.SetSegmentVisibility(segment_id, not display.GetSegmentVisibility(segment_id))

    # -- the slice views ------------------------------------------------------------------------------------------
    def _set_tool(self, tool):
        self.tool = tool
        for button, name in ((self.boxButton, "box"), (self.pointButton, "point")):
            button.blockSignals(True)
            button.checked = tool == name
            button.blockSignals(False)
        self._cancel_drag()

    def _install_observers(self):
        self._remove_observers()
        manager = slicer.app.layoutManager()
        for name in manager.sliceViewNames() if manager is not None else ():
            widget = manager.sliceWidget(name)
            interactor = widget.sliceView().interactorStyle().GetInteractor()
            tags = {}
            for event in ("LeftButtonPressEvent", "MouseMoveEvent", "LeftButtonReleaseEvent"):
                tags[event] = interactor.AddObserver(
                    event, lambda caller, ev, w=widget: self._on_mouse(caller, ev, w), 1.0
                )
            self._observers.append((interactor, tags))

    def _remove_observers(self):
        for interactor, tags in self._observers:
            for tag in tags.values():
                interactor.RemoveObserver(tag)
        self._observers = []

    @staticmethod
    def _ras(widget, interactor):
        x, y = interactor.GetEventPosition()
        return list(widget.mrmlSliceNode().GetXYToRAS().MultiplyPoint((x, y, 0.0, 1.0))[:3])

    def _on_mouse(self, interactor, event, widget):
        self._last_slice_widget = widget
        if self.tool is None or self._busy:
            return
        tags = next(t for i, t in self._observers if i is interactor)
        ras = self._ras(widget, interactor)
        if event == "LeftButtonPressEvent":
            if self.tool == "point":
                self.promptPoint(ras)
            else:
                self._drag = (widget, ras, self._preview())
        elif event == "MouseMoveEvent" and self._drag is not None:
            self._update_preview(self._drag, ras)
        elif event == "LeftButtonReleaseEvent" and self._drag is not None:
            start = self._drag[1]
            self._cancel_drag()
            self.promptBox(start, ras)
        else:
            return
        interactor.GetCommand(tags[event]).SetAbortFlag(1)  # the tool took the click: no window/level drag

    def _preview(self):
        curve = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsClosedCurveNode", "VolSAM box")
        curve.SetCurveTypeToLinear()
        curve.SetSaveWithScene(False)
        curve.CreateDefaultDisplayNodes()
        curve.GetDisplayNode().SetSelectedColor(1.0, 0.8, 0.1)
        curve.GetDisplayNode().SetPointLabelsVisibility(False)
        curve.SetLocked(True)
        return curve

    def _update_preview(self, drag, ras):
        widget, start, curve = drag
        xy_to_ras = widget.mrmlSliceNode().GetXYToRAS()
        ras_to_xy = vtk.vtkMatrix4x4()
        vtk.vtkMatrix4x4.Invert(xy_to_ras, ras_to_xy)
        (x0, y0), (x1, y1) = (ras_to_xy.MultiplyPoint((*p, 1.0))[:2] for p in (start, ras))
        corners = [xy_to_ras.MultiplyPoint((x, y, 0.0, 1.0))[:3] for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
        slicer.util.updateMarkupsControlPointsFromArray(curve, np.array(corners))

    def _cancel_drag(self):
        if self._drag is not None:
            slicer.mrmlScene.RemoveNode(self._drag[2])
        self._drag = None


class VolSAMTest(ScriptedLoadableModuleTest):
    """For a real 3D Slicer (not run in volsam's CI, which has slicer-core only: tests/slicer/ test the logic):

    Slicer --testing --no-main-window --additional-module-paths /path/to/slicer/VolSAM \\
        --python-code "import slicer.testing; slicer.testing.runUnitTest(['/path/to/slicer/VolSAM'], 'VolSAM')"

    Uses the server at $VOLSAM_URL (token $VOLSAM_TOKEN), else starts $VOLSAM_EXECUTABLE / volsam on the PATH.
    """

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_box_point_undo_redo()
        self.setUp()
        self.test_panel_prompts()

    def _logic(self):
        logic = VolSAMLogic(os.environ.get("VOLSAM_URL", "http://127.0.0.1:8000"), token=os.environ.get("VOLSAM_TOKEN"))
        logic.modality = "MR"
        try:
            logic.health()
        except ServerUnreachable:
            logic.start_local_server(env=startup_environment())
        return logic

    @staticmethod
    def _blob_volume():
        """A bright ellipsoid in noise on an oblique, anisotropic grid."""
        k, j, i = np.mgrid[0:24, 0:64, 0:72]
        blob = ((i - 36) / 12.0) ** 2 + ((j - 30) / 9.0) ** 2 + ((k - 12) / 6.0) ** 2 <= 1
        rng = np.random.default_rng(0)
        array = (rng.normal(60, 8, blob.shape) + 100 * blob).astype(np.int16)
        volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "VolSAM test volume")
        slicer.util.updateVolumeFromArray(volume, array)
        a = np.radians(20)
        m = np.eye(4)
        m[:3, :3] = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ np.diag(
            [0.8, 0.9, 2.5]
        )
        volume.SetIJKToRASMatrix(slicer.util.vtkMatrixFromArray(m))
        volume.CreateDefaultDisplayNodes()
        return volume, m

    def test_box_point_undo_redo(self):
        logic = self._logic()
        volume, m = self._blob_volume()
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
        segmentation.CreateDefaultDisplayNodes()
        handle = logic.open_volume(volume)
        self.assertIs(logic.open_volume(volume), handle)  # uploaded once

        def ras(ijk):
            return list((m @ np.array([*ijk, 1.0]))[:3])

        def check(segment_id):
            expected = logic.labelmap(handle) == handle.ref(segmentation, segment_id).label
            got = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segment_id, volume) != 0
            self.assertTrue(np.array_equal(got, expected))
            return int(expected.sum())

        segment_id = logic.add_box(handle, segmentation, ras((23, 20, 12)), ras((49, 40, 12)), name="blob")
        boxed = check(segment_id)
        self.assertGreater(boxed, 0)
        logic.add_point(handle, segmentation, segment_id, ras((36, 30, 14)), positive=True)
        clicked = check(segment_id)
        logic.undo(handle, segmentation)
        self.assertEqual(check(segment_id), boxed)
        logic.redo(handle, segmentation)
        self.assertEqual(check(segment_id), clicked)
        logic.close(handle)
        logic.stop_local_server()
        self.delayDisplay("VolSAM logic: box, click, undo, redo passed")

    def test_panel_prompts(self):
        if slicer.util.mainWindow() is None:
            self.skipTest("the panel needs Slicer's main window (run without --no-main-window)")
        slicer.util.selectModule("VolSAM")
        widget = slicer.modules.volsam.widgetRepresentation().self()
        volume, m = self._blob_volume()
        widget.editor.setSourceVolumeNode(volume)
        widget.modalityCombo.setCurrentText("MR")
        logic = self._logic()  # starts a server when none answers
        widget.urlEdit.text = logic.url
        widget.tokenEdit.text = os.environ.get("VOLSAM_TOKEN", "")
        widget._new_logic()
        widget.logic._server = logic._server  # stopped by widget.cleanup()
        a, b = ((m @ np.array([*ijk, 1.0]))[:3] for ijk in ((23, 20, 12), (49, 40, 12)))
        self.assertTrue(widget.promptBox(list(a), list(b)), widget.statusLabel.text)
        segment_id = widget._current_segment()
        self.assertIsNotNone(widget.handle.ref(widget.editor.segmentationNode(), segment_id))
        widget.onUndo()
        widget.onRedo()
        widget.cleanup()
        self.delayDisplay("VolSAM panel: box, undo, redo passed")
