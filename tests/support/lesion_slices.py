"""A lesion case cut to a few slices around its middle box's slice: the real-model tests whose claim does not
depend on the walk's length (HTTP equals a local session, two backends agree, previews equal the result) encode
those slices instead of the whole crop's."""

from __future__ import annotations

from dataclasses import replace

from volsam.core.volume import Volume
from volsam.data.lesions import LesionCase


def middle_slices(lesion: LesionCase, reach: int) -> LesionCase:
    """``lesion`` with its image and label cut to the ``2 * reach + 1`` slices along k around its middle box's
    slice (same spacing, origin and direction), the middle box moved onto the cut's middle slice."""
    k = lesion.middle_box.slice
    keep = slice(k - reach, k + reach + 1)
    if keep.start < 0 or keep.stop > lesion.image.array.shape[0]:
        raise ValueError(f"{lesion.name}: slices {keep.start}..{keep.stop - 1} are not all in the image")
    image, label = (Volume(v.array[keep], v.spacing, v.origin, v.direction) for v in (lesion.image, lesion.label))
    return replace(lesion, image=image, label=label, middle_box=replace(lesion.middle_box, slice=reach))
