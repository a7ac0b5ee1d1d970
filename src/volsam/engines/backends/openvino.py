"""A torch module run by OpenVINO on the CPU in fp32: converted once (``openvino.convert_model`` traces the
module with an example input), saved under :func:`~volsam.engines.backends.cache_dir` ``/openvino`` as
``<name>-<key>.xml/.bin`` where the key hashes the module's weights, the input shape and the OpenVINO
version, and compiled with ``INFERENCE_PRECISION_HINT=f32`` (``PERFORMANCE_HINT=LATENCY``). Later runs load
the saved model (no tracing). A cache folder that cannot be written only costs the conversion each run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from volsam.core.errors import EngineError
from volsam.engines.backends import cache_dir

log = logging.getLogger(__name__)

#: compile options: fp32 everywhere (OpenVINO's CPU default on AMX / AVX-512-BF16 machines is bf16)
CONFIG = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}


def weights_key(module: torch.nn.Module, input_shape: tuple[int, ...], version: str) -> str:
    """A hex digest of ``module``'s parameters and buffers (names, shapes, bytes), the input shape and the
    OpenVINO ``version``: a converted model is reused only for exactly these weights."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{version}|{input_shape}".encode())
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}|{tuple(t.shape)}|{t.dtype}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class OpenVinoModule:
    """``module`` (eval, CPU, fp32) compiled by OpenVINO; call it with a float32 ``(n, *input_shape[1:])``
    tensor, get a float32 tensor back (first output); :meth:`outputs` gives every output.

    Args:
        module: the torch module; traced once, with tracing-friendly paths (``trace_context``).
        input_shape: the example input's shape; the batch dimension is made dynamic.
        name: file-name prefix in the cache.
        trace_context: a context manager factory entered while tracing (e.g. to turn off fused CPU kernels
            that OpenVINO cannot read).
        folder: cache folder (None: ``cache_dir() / "openvino"``).
        dynamic_batch: make the batch dimension free (False: keep the shapes the converter gives, for modules
            whose traced reshapes bake the batch size in; such a model is called with ``input_shape``'s batch).
    """

    def __init__(
        self,
        module: torch.nn.Module,
        input_shape: tuple[int, ...],
        name: str,
        trace_context: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
        folder: Path | None = None,
        dynamic_batch: bool = True,
    ) -> None:
        import openvino as ov

        self.folder = Path(folder) if folder is not None else cache_dir() / "openvino"
        self.dynamic_batch = dynamic_batch
        key = weights_key(module, input_shape, ov.__version__ if dynamic_batch else f"{ov.__version__}|static")
        self.path = self.folder / f"{name}-{key}.xml"
        core = ov.Core()
        t0 = time.perf_counter()
        self.converted = False
        model = None
        if self.path.exists() and self.path.with_suffix(".bin").exists():
            try:
                model = core.read_model(str(self.path))
            except RuntimeError as exc:  # a damaged file: convert again
                log.warning("cannot read the cached OpenVINO model %s (%s): converting again", self.path, exc)
        if model is None:
            model = self._convert(ov, module, input_shape, trace_context, dynamic_batch)
            self.converted = True
            self._save(ov, model)
        self.compiled = core.compile_model(model, "CPU", CONFIG)
        self.request = self.compiled.create_infer_request()
        log.info(
            "OpenVINO %s: %s %s in %.1f s (%s)",
            ov.__version__, name, "converted" if self.converted else "loaded", time.perf_counter() - t0, self.path,
        )  # fmt: skip

    @staticmethod
    def _convert(ov, module: torch.nn.Module, input_shape: tuple[int, ...], trace_context, dynamic_batch: bool):
        example = torch.rand(input_shape, dtype=torch.float32)
        try:
            context = trace_context() if trace_context is not None else contextlib.nullcontext()
            with torch.no_grad(), context, warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's notes on Python-level shape arithmetic
                model = ov.convert_model(module.eval(), example_input=example)
            if dynamic_batch:
                model.reshape({0: ov.PartialShape([-1, *input_shape[1:]])})
        except Exception as exc:  # noqa: BLE001 - any converter failure means: this backend cannot run it
            raise EngineError(f"OpenVINO could not convert the model: {exc}") from exc
        return model

    def _save(self, ov, model) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".xml")
            os.close(fd)
            tmp_xml = Path(tmp)
            ov.save_model(model, str(tmp_xml), compress_to_fp16=False)
            tmp_xml.with_suffix(".bin").replace(self.path.with_suffix(".bin"))
            tmp_xml.replace(self.path)  # the .xml last: a reader never sees an .xml without its .bin
        except OSError as exc:
            log.warning("cannot keep the OpenVINO model in %s (%s): it is converted on each run", self.folder, exc)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._infer(x)
        return torch.from_numpy(self.request.get_output_tensor(0).data.copy())

    def outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Every output of the model on ``x``, in the module's output order (float32 CPU tensors)."""
        self._infer(x)
        return tuple(
            torch.from_numpy(self.request.get_output_tensor(i).data.copy()) for i in range(len(self.compiled.outputs))
        )

    def _infer(self, x: torch.Tensor) -> None:
        data = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        self.request.infer({0: data})


def load_or_none(
    module: torch.nn.Module,
    input_shape: tuple[int, ...],
    name: str,
    what: str,
    **options: object,
) -> OpenVinoModule | None:
    """:class:`OpenVinoModule` of ``module`` (``options`` as its keyword arguments), or None with one warning
    naming ``what`` (e.g. "the SAM image encoder") when OpenVINO cannot convert it: torch then runs it."""
    try:
        return OpenVinoModule(module, input_shape, name, **options)  # type: ignore[arg-type]
    except EngineError as exc:
        log.warning("backend openvino unavailable for %s (%s): using torch", what, exc)
        return None
