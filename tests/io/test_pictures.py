"""2D images: PNG, JPEG, BMP, TIFF, a single DICOM frame and CVPR 2024 2D .npz files read as one-slice
Volumes; colour kept in Volume.colour with its BT.601 luma as the array; sizes checked before decoding."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
import tifffile
from PIL import Image
from pydicom.data import get_testdata_file

from volsam.core.errors import ImageTooLarge, InputError, OutputError
from volsam.core.volume import Volume, luma
from volsam.io import read_image, read_volume, write_labels, write_volume
from volsam.io.npz import cvpr_modality, npz_boxes


@pytest.fixture()
def rgb() -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (21, 34, 3), dtype=np.uint8)


def _save(path, pixels: np.ndarray) -> None:
    """TIFFs with tifffile, the rest with Pillow."""
    if path.suffix.startswith(".tif"):
        tifffile.imwrite(path, pixels)
    else:
        Image.fromarray(pixels).save(path)


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff"])
def test_lossless_colour_is_kept_exactly(tmp_path, rgb, suffix):
    path = tmp_path / f"photo{suffix}"
    _save(path, rgb)
    image = read_image(path)
    assert image.shape == (1, 21, 34) and image.size == (34, 21, 1)
    assert np.array_equal(image.colour[0], rgb)
    assert np.array_equal(image.array[0], luma(rgb))
    assert image.meta["display_values"] and image.meta["rgb"]
    assert image.spacing == (1.0, 1.0, 1.0)


def test_luma_is_bt601():
    assert luma(np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 10, 10]], np.uint8)).tolist() == [76, 150, 29, 10]


def test_jpeg_colour_and_grey(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=95)
    image = read_volume(tmp_path / "c.jpg")
    assert image.meta["format"] == "jpeg" and image.colour is not None
    assert np.array_equal(image.colour[0], np.asarray(Image.open(tmp_path / "c.jpg").convert("RGB")))
    Image.fromarray(rgb[..., 1]).save(tmp_path / "g.jpeg")
    assert read_volume(tmp_path / "g.jpeg").colour is None


def test_grey_saved_as_rgb_is_grey(tmp_path, rgb):
    grey = rgb[..., 0]
    Image.fromarray(np.repeat(grey[..., None], 3, axis=2)).save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.colour is None and np.array_equal(image.array[0], grey)


def test_rgba_and_palette_become_rgb(tmp_path, rgb):
    rgba = np.concatenate([rgb, np.full((*rgb.shape[:2], 1), 7, np.uint8)], axis=2)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert np.array_equal(read_image(tmp_path / "a.png").colour[0], rgb)  # alpha dropped
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    assert np.array_equal(read_image(tmp_path / "p.png").colour[0], expected)


def test_sixteen_bit_grey_png_and_tiff(tmp_path):
    values = (np.arange(21 * 34).reshape(21, 34) * 90).astype(np.uint16)
    tifffile.imwrite(tmp_path / "x.tif", values)
    Image.fromarray(values).save(tmp_path / "x.png")
    for name in ("x.tif", "x.png"):
        image = read_image(tmp_path / name)
        assert image.array.dtype == np.uint16 and np.array_equal(image.array[0], values), name
        assert not image.meta["display_values"]  # scaled like MR, not taken as 0..255


def test_float_tiff(tmp_path):
    values = np.linspace(-1, 1, 12 * 10, dtype=np.float32).reshape(12, 10)
    tifffile.imwrite(tmp_path / "f.tif", values)
    assert np.array_equal(read_image(tmp_path / "f.tif").array[0], values)


def test_multi_page_tiff_is_a_stack_mixed_pages_refused(tmp_path):
    pages = np.random.default_rng(0).integers(0, 4000, (5, 12, 10), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", pages, photometric="minisblack")
    stack = read_volume(tmp_path / "s.tif")
    assert stack.shape == (5, 12, 10) and np.array_equal(stack.array, pages)
    with pytest.raises(InputError, match="5 slices, not a 2D image"):
        read_image(tmp_path / "s.tif")
    tifffile.imwrite(tmp_path / "m.tif", pages[0])
    tifffile.imwrite(tmp_path / "m.tif", pages[1, :6], append=True)
    with pytest.raises(InputError, match="2 images of different sizes"):
        read_volume(tmp_path / "m.tif")


def test_declared_size_is_checked_before_decoding(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((400, 500), np.uint8)).save(tmp_path / "big.png")
    tifffile.imwrite(tmp_path / "big.tif", np.zeros((400, 500), np.uint16))
    with pytest.raises(ImageTooLarge, match="big.png"):
        read_volume(tmp_path / "big.png", max_bytes=100_000)
    with pytest.raises(ImageTooLarge, match="big.tif"):
        read_volume(tmp_path / "big.tif", max_bytes=300_000)
    assert read_volume(tmp_path / "big.png", max_bytes=200_000).shape == (1, 400, 500)

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("decoded before the size check")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    with pytest.raises(ImageTooLarge):
        read_volume(tmp_path / "big.png", max_bytes=100_000)


def test_decompression_bomb_limit_holds_without_max_bytes(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((100, 100), np.uint8)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5_000)
    with pytest.raises(ImageTooLarge, match="bomb.png"):
        read_volume(tmp_path / "bomb.png")


@pytest.mark.parametrize("name", ["bad.png", "bad.jpg", "bad.bmp", "bad.tif"])
def test_corrupt_pictures_are_one_line(tmp_path, name, rgb):
    good = tmp_path / f"good{name[3:]}"
    _save(good, rgb)
    (tmp_path / name).write_bytes(good.read_bytes()[: len(good.read_bytes()) // 3])
    with pytest.raises(InputError) as exc:
        read_volume(tmp_path / name)
    assert name in str(exc.value) and "\n" not in str(exc.value)


def test_exif_orientation_is_applied(tmp_path, rgb):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90 degrees clockwise
    Image.fromarray(rgb).save(tmp_path / "r.jpg", exif=exif, quality=100)
    image = read_image(tmp_path / "r.jpg")
    assert image.shape == (1, 34, 21) and image.meta["exif_transposed"]


def test_animated_picture_refused(tmp_path, rgb):
    frames = [Image.fromarray(rgb), Image.fromarray(rgb[::-1].copy())]
    frames[0].save(tmp_path / "a.png", save_all=True, append_images=frames[1:])
    with pytest.raises(InputError, match="2 frames"):
        read_volume(tmp_path / "a.png")


# -- DICOM --------------------------------------------------------------------------------------------------
def test_dicom_colour_still_and_pixel_spacing():
    path = get_testdata_file("SC_rgb_small_odd.dcm")
    image = read_image(path)
    assert image.colour is not None and image.spacing[:2] == pytest.approx((33.333333, 33.333333))
    assert image.meta["pixel_spacing_from"] == "PixelSpacing"
    reference = pydicom.dcmread(path).pixel_array
    assert np.array_equal(image.colour[0], reference)


def test_dicom_ybr_is_converted_to_rgb():
    ybr = read_image(get_testdata_file("SC_ybr_full_422_uncompressed.dcm"))
    rgb = read_image(get_testdata_file("SC_rgb_rle.dcm"))  # the same picture stored as RGB
    assert np.abs(ybr.colour.astype(int) - rgb.colour).max() <= 8


def test_dicom_imager_pixel_spacing(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelSpacing
    ds.ImagerPixelSpacing = [0.143, 0.15]  # row spacing, column spacing
    ds.Modality = "DX"
    ds.save_as(tmp_path / "dx.dcm")
    image = read_image(tmp_path / "dx.dcm")
    assert image.spacing[:2] == pytest.approx((0.15, 0.143))  # (i = columns, j = rows)
    assert image.meta["pixel_spacing_from"] == "ImagerPixelSpacing" and image.colour is None
    both = pydicom.dcmread(tmp_path / "dx.dcm")
    both.PixelSpacing = [0.2, 0.25]
    both.save_as(tmp_path / "both.dcm")
    assert read_image(tmp_path / "both.dcm").spacing[:2] == pytest.approx((0.25, 0.2))  # PixelSpacing first


def test_sixteen_bit_colour_dicom_refused():
    with pytest.raises(InputError, match="colour DICOM image with .*16-bit"):
        read_volume(get_testdata_file("SC_rgb_rle_16bit.dcm"))


# -- CVPR 2024 2D .npz ---------------------------------------------------------------------------------------
def test_cvpr_2d_npz(tmp_path, rgb):
    path = tmp_path / "2DBox_Dermoscopy_0001.npz"
    np.savez(path, imgs=np.ascontiguousarray(np.pad(rgb, ((0, 0), (0, 0), (0, 0)))), boxes=np.array([[1, 2, 9, 20]]))
    image = read_image(path)
    assert np.array_equal(image.colour[0], rgb) and image.meta["cvpr_modality"] == "Dermoscopy"
    assert npz_boxes(path, image) == [(1, 2, 9, 20)]
    np.savez(tmp_path / "out.npz", imgs=rgb, boxes=np.array([[1, 2, 40, 20]]))
    with pytest.raises(InputError, match=r"box \[1, 2, 40, 20\] lies outside"):
        npz_boxes(tmp_path / "out.npz", read_image(tmp_path / "out.npz"))
    np.savez(tmp_path / "pickled.npz", imgs=rgb, boxes=np.array([{"z": 1}], dtype=object))
    with pytest.raises(InputError, match="never loaded"):
        npz_boxes(tmp_path / "pickled.npz")


def test_cvpr_modality_prefixes():
    assert cvpr_modality("2DBox_Endoscopy_abc_001.npz") == "Endoscopy"
    assert cvpr_modality("3DBox_CT_0001.npz") == "CT"
    assert cvpr_modality("case.npz") is None


# -- outputs -------------------------------------------------------------------------------------------------
def test_label_png_round_trip_and_refusals(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    image = read_image(tmp_path / "photo.png")
    labels = np.zeros(image.shape, np.uint8)
    labels[0, 3:9, 4:12] = 2
    labelmap = image.with_array(labels)
    assert labelmap.colour is None
    write_labels(labelmap, tmp_path / "mask.png")
    back = np.asarray(Image.open(tmp_path / "mask.png"))
    assert back.shape == rgb.shape[:2] and np.array_equal(back, labels[0])
    big = image.with_array(labels.astype(np.uint16) * 200)
    write_labels(big, tmp_path / "mask16.png")
    assert np.array_equal(read_image(tmp_path / "mask16.png").array, big.array)
    with pytest.raises(OutputError, match="never|input|overwrite|read from"):
        write_labels(labelmap, tmp_path / "photo.png")
    with pytest.raises(OutputError, match="label map of 3 slices"):
        write_labels(Volume(np.zeros((3, 4, 5), np.uint8)), tmp_path / "v.png")
    with pytest.raises(OutputError, match="not an image"):
        write_volume(image, tmp_path / "copy.png", label=False)


def test_one_slice_npz_segs_are_two_dimensional(tmp_path, rgb):
    np.savez(tmp_path / "2DBox_US_1.npz", imgs=rgb)
    image = read_image(tmp_path / "2DBox_US_1.npz")
    write_labels(image.with_array(np.ones(image.shape, np.uint8)), tmp_path / "seg.npz")
    with np.load(tmp_path / "seg.npz") as data:
        assert data["segs"].shape == rgb.shape[:2]
    assert read_volume(tmp_path / "seg.npz").same_grid(image)


def test_colour_must_match_the_array():
    with pytest.raises(InputError, match="colour must be uint8 RGB"):
        Volume(np.zeros((1, 4, 5), np.uint8), colour=np.zeros((1, 4, 5, 3), np.float32))


def test_info_of_a_colour_picture(tmp_path, rgb):
    from volsam.io import describe, format_description

    Image.fromarray(rgb).save(tmp_path / "photo.png")
    text = format_description(describe(read_image(tmp_path / "photo.png")))
    assert "colour     RGB" in text and "photo.png (png)" in text and "34 x 21 x 1 voxels" in text
