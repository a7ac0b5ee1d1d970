"""Dice similarity coefficient (DSC)."""

from __future__ import annotations

import numpy as np

from volsam.metrics.masks import as_masks


def dice(pred: np.ndarray, gt: np.ndarray, empty_value: float = float("nan")) -> float:
    """Dice similarity coefficient ``2|P & G| / (|P| + |G|)`` of two masks (2D ``[j, i]`` or 3D ``[k, j, i]``).

    Both masks empty -> ``empty_value`` (NaN by default, as surface-distance's ``compute_dice_coefficient``;
    pass 1.0 for "both agree there is nothing"); exactly one empty -> 0.0.
    """
    p, g = as_masks(pred, gt)
    total = int(np.count_nonzero(p)) + int(np.count_nonzero(g))
    if total == 0:
        return float(empty_value)
    return 2.0 * int(np.count_nonzero(p & g)) / total
