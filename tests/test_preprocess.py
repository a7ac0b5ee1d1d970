import numpy as np
import pytest

from volsam.core import InputError, Volume
from volsam.preprocess import WINDOWS, fit_normalizer, guess_modality, parse_window


def test_ct_window_maps_level_and_width_linearly():
    vol = Volume(np.array([-1000, -160, 40, 240, 3000], np.float32).reshape(1, 1, 5))
    norm = fit_normalizer(vol, "auto")  # negative HU -> CT, abdomen 40/400 by default
    assert norm.modality == "CT"
    # [-160, 240] -> [0, 255]; level 40 -> 127.5 -> 128 (round half to even gives 128)
    assert norm.apply(vol.array).ravel().tolist() == [0, 0, 128, 255, 255]


def test_window_presets_and_custom():
    assert parse_window("lung") == WINDOWS["lung"] == (-600.0, 1500.0)
    assert parse_window("50,350") == (50.0, 350.0)
    for bad in ("wide", "1,2,3", "40,-5", "a,b"):
        with pytest.raises(InputError):
            parse_window(bad)
    vol = Volume(np.array([-600 - 750, -600, -600 + 750], np.float32).reshape(1, 1, 3))
    assert fit_normalizer(vol, "CT", "lung").apply(vol.array).ravel().tolist() == [0, 128, 255]


def test_mr_percentiles_of_nonzero_voxels_keep_background_zero():
    rng = np.random.default_rng(0)
    arr = np.zeros((4, 50, 50), np.float32)
    arr[:, 10:40, 10:40] = rng.uniform(100, 300, size=(4, 30, 30))
    arr[0, 20, 20] = 10_000  # an outlier beyond the 99.5th percentile
    vol = Volume(arr)
    norm = fit_normalizer(vol, "MR")
    inside = arr[arr > 0]
    lo, hi = np.percentile(inside, [0.5, 99.5])
    assert norm.low == pytest.approx(lo) and norm.high == pytest.approx(hi)
    out = norm.apply(arr)
    assert out.dtype == np.uint8
    assert (out[arr == 0] == 0).all()
    assert out[0, 20, 20] == 255
    mid = (lo + hi) / 2
    assert abs(int(norm.apply(np.array([mid]))[0]) - 128) <= 1


def test_modality_auto_from_tag_then_range():
    assert guess_modality(Volume(np.zeros((1, 2, 2)), meta={"modality": "PT"}))[0] == "PET"
    assert guess_modality(Volume(np.full((1, 2, 2), -1024.0)))[0] == "CT"
    assert guess_modality(Volume(np.full((1, 2, 2), 5.0)))[0] == "MR"


def test_nan_and_constant_images_do_not_break():
    arr = np.full((2, 3, 3), 7.0, np.float32)
    arr[0, 0, 0] = np.nan
    out = fit_normalizer(Volume(arr), "auto").apply(arr)
    assert out[0, 0, 0] == 0 and out[1, 1, 1] == 255


def test_window_on_non_ct_and_unknown_modality_are_refused():
    vol = Volume(np.ones((1, 2, 2)))
    with pytest.raises(InputError, match="CT only"):
        fit_normalizer(vol, "MR", "brain")
    with pytest.raises(InputError, match="modality"):
        fit_normalizer(vol, "XR")
