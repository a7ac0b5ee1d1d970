"""SimpleITK <-> Volume, and ITK error messages shortened to one line.

SimpleITK and :class:`~volsam.core.volume.Volume` share the conventions (array ``[k, j, i]``, spacing /
origin / direction in ITK's LPS), so the conversion copies geometry as is. 2D images become one k-slice
(spacing 1 mm and origin 0 along the new axis).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import SimpleITK as sitk

from volsam.core.errors import InputError
from volsam.core.volume import Volume

# SimpleITK component types -> numpy dtype names (for meta["pixel_type"]).
_COMPONENT_NAMES = {
    sitk.sitkUInt8: "uint8",
    sitk.sitkInt8: "int8",
    sitk.sitkUInt16: "uint16",
    sitk.sitkInt16: "int16",
    sitk.sitkUInt32: "uint32",
    sitk.sitkInt32: "int32",
    sitk.sitkUInt64: "uint64",
    sitk.sitkInt64: "int64",
    sitk.sitkFloat32: "float32",
    sitk.sitkFloat64: "float64",
    sitk.sitkVectorUInt8: "uint8",
    sitk.sitkVectorInt8: "int8",
    sitk.sitkVectorUInt16: "uint16",
    sitk.sitkVectorInt16: "int16",
    sitk.sitkVectorUInt32: "uint32",
    sitk.sitkVectorInt32: "int32",
    sitk.sitkVectorUInt64: "uint64",
    sitk.sitkVectorInt64: "int64",
    sitk.sitkVectorFloat32: "float32",
    sitk.sitkVectorFloat64: "float64",
}

# numpy dtypes that SimpleITK can hold as a scalar image
WRITABLE_DTYPES = (
    "uint8",
    "int8",
    "uint16",
    "int16",
    "uint32",
    "int32",
    "uint64",
    "int64",
    "float32",
    "float64",
)


def pixel_type_name(pixel_id: int) -> str:
    """numpy name of a SimpleITK pixel id's component type (``"int16"``...), or ITK's own wording."""
    return _COMPONENT_NAMES.get(pixel_id, sitk.GetPixelIDValueAsString(pixel_id))


def itk_reason(exc: BaseException) -> str:
    """The informative part of a (multi-line) ITK exception, on one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "ERROR:" in line:
            return line.split("ERROR:", 1)[1].strip()[:200]
    return (lines[-1] if lines else type(exc).__name__)[:200]


def image_to_volume(image: sitk.Image, meta: dict[str, Any]) -> Volume:
    """Volume holding a scalar 2D or 3D SimpleITK image (a 2D image becomes one k-slice)."""
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{meta.get('source')}: expected a scalar image, got vector pixels")
    dim = image.GetDimension()
    array = sitk.GetArrayFromImage(image)
    if dim == 3:
        spacing = image.GetSpacing()
        origin = image.GetOrigin()
        direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(3, 3)
    elif dim == 2:
        array = array[None]
        spacing = (*image.GetSpacing(), 1.0)
        origin = (*image.GetOrigin(), 0.0)
        direction = np.eye(3)
        direction[:2, :2] = np.asarray(image.GetDirection(), dtype=np.float64).reshape(2, 2)
    else:
        raise InputError(f"{meta.get('source')}: a {dim}D image cannot be a volume")
    return Volume(array, spacing=spacing, origin=origin, direction=direction, meta=meta)


def volume_to_image(volume: Volume, array: np.ndarray | None = None) -> sitk.Image:
    """SimpleITK image of ``array`` (default ``volume.array``) on ``volume``'s grid."""
    data = volume.array if array is None else array
    image = sitk.GetImageFromArray(np.ascontiguousarray(data), isVector=False)
    image.SetSpacing(tuple(float(s) for s in volume.spacing))
    image.SetOrigin(tuple(float(o) for o in volume.origin))
    image.SetDirection(tuple(float(d) for d in volume.direction.ravel()))
    return image
