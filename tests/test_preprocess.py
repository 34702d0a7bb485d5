"""Line preprocessing: image loading, each step on images with known answers, the chain."""

import dataclasses
import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from mdrnn.datasets import imageio
from mdrnn.datasets.image_headers import read_header
from mdrnn.datasets.imageio import load_image
from mdrnn.errors import InputError
from mdrnn.pipelines.geometry import estimate_skew, estimate_slant, rotate, shear
from mdrnn.pipelines.preprocess import (
    MAX_ASPECT,
    binarise_otsu,
    binarise_sauvola,
    crop_to_ink,
    deskew,
    deslant,
    fix_polarity,
    ink_mask,
    is_inverted,
    median_filter,
    normalise_line,
    preprocess_line,
    remove_specks,
    scale_to_height,
    stretch_contrast,
)
from mdrnn.pipelines.preprocess_config import PreprocessConfig

DIGITS = Path(__file__).resolve().parents[1] / "datasets" / "data" / "mnist_digits_8k.npz"


def render_line(text="Pack my box with five dozen liquor jugs", font=cv2.FONT_HERSHEY_SIMPLEX,
                scale=1.4, thickness=2):
    """Dark text on white paper, with a margin."""
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    image = np.full((h + base + 30, w + 30), 255, np.uint8)
    cv2.putText(image, text, (15, 15 + h), font, scale, 0, thickness, cv2.LINE_AA)
    return image


def digit_line(count=7, seed=0):
    """A line of real handwritten MNIST digits, dark on light as the data layer composes it."""
    data = np.load(DIGITS)["images"]
    picks = np.random.default_rng(seed).choice(len(data), count, replace=False)
    return 255 - np.hstack([data[i] for i in picks])


def tiff_bytes(pages, bits=8, photometric=1):
    """An uncompressed TIFF of 2-D uint8 pages (bits=1: > 127 is white)."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    link = 4
    for page in pages:
        h, w = page.shape
        if bits == 1:
            white = page > 127
            data = np.packbits(white if photometric == 1 else ~white, axis=1).tobytes()
        else:
            data = page.tobytes()
        offset = len(out)
        out += data + b"\x00" * (len(data) % 2)
        entries = [(256, 4, w), (257, 4, h), (258, 3, bits), (259, 3, 1), (262, 3, photometric),
                   (273, 4, offset), (277, 3, 1), (278, 4, h), (279, 4, len(data))]
        struct.pack_into("<I", out, link, len(out))
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            out += struct.pack("<HHI", tag, kind, 1)
            out += struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        link = len(out)
        out += b"\x00\x00\x00\x00"
    return bytes(out)


def exif_block(orientation):
    """A TIFF-layout EXIF block holding only the Orientation tag."""
    return (b"II*\x00" + struct.pack("<IH", 8, 1) + struct.pack("<HHIHH", 0x0112, 3, 1,
                                                                orientation, 0)
            + b"\x00\x00\x00\x00")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def corner_mark():
    """White 20x40 image with a dark block at the top left: shows any flip or rotation."""
    image = np.full((20, 40), 255, np.uint8)
    image[2:6, 3:10] = 0
    return image


def mark_centre(gray):
    ys, xs = np.nonzero(gray < 128)
    return round(float(ys.mean()), 1), round(float(xs.mean()), 1)


# --- config -------------------------------------------------------------------------------

def test_config_round_trips_through_json():
    config = PreprocessConfig(height=48, polarity="keep", binarise="sauvola", sauvola_window=25,
                              sauvola_k=0.3, median=3, min_component=5, deskew=True, slant=True,
                              crop_margin=0.1, mean_std=True)
    assert PreprocessConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_config_from_a_partial_dict_takes_defaults():
    config = PreprocessConfig.from_dict({"height": 48})
    assert config.height == 48
    assert config == PreprocessConfig(height=48)
    assert config.binarise == "none" and not config.deskew and not config.mean_std


@pytest.mark.parametrize("bad", [
    {"height": 4}, {"polarity": "dark"}, {"binarise": "magic"}, {"median": 4},
    {"sauvola_window": 10}, {"sauvola_k": 1.5}, {"deskew": "yes"}, {"height": 64.0},
    {"contrast_low": 99, "contrast_high": 50}, {"crop_margin": -0.1}, {"colour": True},
])
def test_config_rejects_bad_values_quoting_them(bad):
    with pytest.raises(ValueError) as error:
        PreprocessConfig.from_dict(bad)
    quoted = [repr(v) for v in bad.values()] + list(bad)
    assert any(q in str(error.value) for q in quoted)


# --- loading ------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif", ".bmp", ".pgm", ".ppm", ".webp",
                                    ".gif"])
def test_load_image_formats(tmp_path, suffix):
    gray = np.full((30, 50), 220, np.uint8)
    gray[:, :25] = 30
    image = gray if suffix == ".pgm" else cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    path = tmp_path / f"line{suffix}"
    assert cv2.imwrite(str(path), image)
    loaded = load_image(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (30, 50)
    # JPEG and GIF (a dithered palette) are lossy.
    assert np.median(np.abs(loaded.astype(int) - gray)) <= 6
    assert np.median(loaded[:, :25]) <= 45 and np.median(loaded[:, 25:]) >= 205
    assert read_header(path).width == 50 and read_header(path).height == 30


def test_load_bitonal_pbm(tmp_path):
    gray = np.full((12, 21), 255, np.uint8)
    gray[3:9, 5:15] = 0
    path = tmp_path / "line.pbm"
    assert cv2.imwrite(str(path), gray)
    np.testing.assert_array_equal(load_image(path), gray)


def test_transparent_background_becomes_white_paper(tmp_path):
    rgba = np.zeros((20, 30, 4), np.uint8)  # transparent black, as many tools write
    rgba[5:15, 10:20] = (0, 0, 0, 255)  # opaque black ink
    rgba[5:15, 22:26] = (0, 0, 0, 128)  # half-transparent ink
    path = tmp_path / "line.png"
    assert cv2.imwrite(str(path), rgba)
    loaded = load_image(path)
    assert loaded[0, 0] == 255 and loaded[10, 15] == 0
    assert 120 <= loaded[10, 24] <= 135


def test_sixteen_bit_images_keep_their_contrast(tmp_path):
    twelve_bit = np.full((10, 20), 4000, np.uint16)
    twelve_bit[:, :10] = 100
    full = twelve_bit.astype(np.uint32) * 16  # the same image in 16 bits
    for name, image in (("a.png", twelve_bit), ("b.png", full.astype(np.uint16))):
        assert cv2.imwrite(str(tmp_path / name), image)
        loaded = load_image(tmp_path / name)
        assert loaded.dtype == np.uint8
        assert loaded[0, 15] >= 248 and loaded[0, 0] <= 7


@pytest.mark.parametrize("photometric", [0, 1])
def test_one_bit_tiff_first_page(tmp_path, photometric):
    first, second = np.full((9, 21), 255, np.uint8), np.zeros((9, 21), np.uint8)
    first[2:7, 4:17] = 0
    path = tmp_path / "scan.tif"
    path.write_bytes(tiff_bytes([first, second], bits=1, photometric=photometric))
    np.testing.assert_array_equal(load_image(path), first)


@pytest.mark.parametrize("orientation, centre", [
    (1, (3.5, 6.0)), (2, (3.5, 33.0)), (3, (15.5, 33.0)), (4, (15.5, 6.0)),
    (5, (6.0, 3.5)), (6, (6.0, 15.5)), (7, (33.0, 15.5)), (8, (33.0, 3.5)),
])
def test_exif_orientation(tmp_path, orientation, centre):
    """JPEG (oriented by the decoder) and PNG with alpha (oriented here) agree."""
    mark = corner_mark()
    ok, jpeg = cv2.imencode(".jpg", mark, [cv2.IMWRITE_JPEG_QUALITY, 100])
    app1 = b"Exif\x00\x00" + exif_block(orientation)
    jpeg = bytes(jpeg)
    (tmp_path / "a.jpg").write_bytes(jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2)
                                     + app1 + jpeg[2:])
    rgba = np.dstack([mark, mark, mark, np.full_like(mark, 255)])
    ok, png = cv2.imencode(".png", rgba)
    png = bytes(png)
    (tmp_path / "b.png").write_bytes(png[:33] + png_chunk(b"eXIf", exif_block(orientation))
                                     + png[33:])
    assert read_header(tmp_path / "b.png").alpha
    for name in ("a.jpg", "b.png"):
        assert mark_centre(load_image(tmp_path / name)) == centre


@pytest.mark.parametrize("content, reason", [
    (b"", "empty file"),
    (b"hello, this is text\n", "not a supported image"),
    ("truncated", "truncated"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "malformed or truncated"),
])
def test_bad_files_raise_input_error_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "bad file.png"
    if content == "truncated":
        ok, data = cv2.imencode(".png", render_line())
        content = bytes(data)[: len(data) // 2]
    path.write_bytes(content)
    with pytest.raises(InputError) as error:
        load_image(path)
    message = str(error.value)
    assert str(path) in message and reason in message and "\n" not in message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nothing.png")
    with pytest.raises(InputError, match="directory"):
        load_image(tmp_path)


def huge_headers():
    """Header-only files that claim 20000 x 20000 pixels, per format."""
    n = 20000
    ihdr = struct.pack(">IIBBBBB", n, n, 8, 0, 0, 0, 0)
    yield "png", b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")
    yield "jpeg", b"\xff\xd8\xff\xc0" + struct.pack(">HBHHB", 11, 8, n, n, 1) + b"\x01\x11\x00"
    tiff = b"II*\x00" + struct.pack("<IH", 8, 2) + struct.pack("<HHII", 256, 4, 1, n) \
        + struct.pack("<HHII", 257, 4, 1, n) + b"\x00" * 4
    yield "tiff", tiff
    big = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + struct.pack("<Q", 2) \
        + struct.pack("<HHQQ", 256, 4, 1, n) + struct.pack("<HHQQ", 257, 4, 1, n) + b"\x00" * 8
    yield "bigtiff", big
    yield "bmp", b"BM" + b"\x00" * 12 + struct.pack("<IiiHH", 40, n, -n, 1, 8) + b"\x00" * 24
    yield "pnm", b"P5\n# a comment\n20000 20000\n255\n"
    yield "webp", b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00" \
        + (n - 1).to_bytes(3, "little") * 2
    yield "gif", b"GIF89a" + struct.pack("<HH", n, n) + b"\x00" * 8


@pytest.mark.parametrize("kind, data", list(huge_headers()), ids=[k for k, _ in huge_headers()])
def test_huge_images_are_refused_before_decoding(tmp_path, monkeypatch, kind, data):
    path = tmp_path / f"huge.{kind}"
    path.write_bytes(data)
    header = read_header(path)
    assert (header.format, header.width, header.height) == (kind.removeprefix("big"), 20000,
                                                             20000)

    def no_decoding(*args):
        raise AssertionError("decoded a refused image")

    monkeypatch.setattr(imageio.cv2, "imdecode", no_decoding)
    with pytest.raises(InputError, match="20000x20000 pixels is above the limit"):
        load_image(path)


def test_pixel_limit_is_a_parameter(tmp_path):
    path = tmp_path / "line.png"
    cv2.imwrite(str(path), np.zeros((10, 30), np.uint8))
    assert load_image(path, max_pixels=300).shape == (10, 30)
    with pytest.raises(InputError, match="above the limit of 299 pixels"):
        load_image(path, max_pixels=299)


def test_tiny_and_blank_images_give_a_defined_result(tmp_path):
    cv2.imwrite(str(tmp_path / "dot.png"), np.zeros((1, 1), np.uint8))
    dot = preprocess_line(load_image(tmp_path / "dot.png"), PreprocessConfig())
    assert dot.shape == (64, 64) and dot.dtype == np.float32
    white = preprocess_line(np.full((50, 200), 255, np.uint8), PreprocessConfig(deskew=True,
                                                                                slant=True))
    assert white.shape == (64, 256) and not white.any()
    with pytest.raises(ValueError, match="empty image"):
        preprocess_line(np.zeros((0, 5), np.uint8), PreprocessConfig())


# --- steps --------------------------------------------------------------------------------

def test_polarity_of_inverted_images_is_fixed():
    line = render_line()
    inverted = 255 - line
    assert is_inverted(inverted) and not is_inverted(line)
    np.testing.assert_array_equal(fix_polarity(inverted), line)
    np.testing.assert_array_equal(fix_polarity(line), line)
    np.testing.assert_array_equal(fix_polarity(inverted, "keep"), inverted)
    np.testing.assert_array_equal(fix_polarity(line, "invert"), inverted)
    assert not is_inverted(np.full((20, 20), 30, np.uint8))  # no ink: nothing to tell


def test_preprocess_line_is_the_same_for_either_polarity():
    line = digit_line()
    config = PreprocessConfig()
    np.testing.assert_array_equal(preprocess_line(255 - line, config),
                                  preprocess_line(line, config))


def test_contrast_stretch_maps_ink_to_black_and_paper_to_white():
    faint = np.full((40, 100), 190, np.uint8)
    faint[15:25, 10:90] = 120
    out = stretch_contrast(faint)
    assert out[0, 0] == 255 and out[20, 50] == 0
    noisy_blank = np.clip(np.random.default_rng(0).normal(200, 3, (40, 100)), 0, 255)
    noisy_blank = noisy_blank.astype(np.uint8)
    np.testing.assert_array_equal(stretch_contrast(noisy_blank), noisy_blank)


def test_otsu_separates_ink_from_paper():
    rng = np.random.default_rng(1)
    truth = np.zeros((40, 120), bool)
    truth[10:30, 20:25] = truth[10:15, 20:100] = True
    gray = np.where(truth, 60, 200) + rng.normal(0, 8, truth.shape)
    binary = binarise_otsu(np.clip(gray, 0, 255).astype(np.uint8))
    np.testing.assert_array_equal(binary == 0, truth)


def test_sauvola_keeps_strokes_on_a_gradient_background():
    h, w = 80, 600
    background = np.tile(np.linspace(70, 250, w), (h, 1))
    strokes = np.zeros((h, w), bool)
    for x in range(20, w - 20, 40):
        strokes[20:60, x:x + 4] = True  # vertical bars
        strokes[38:42, x:x + 20] = True  # and bars across
    gray = np.clip(np.where(strokes, background - 50, background), 0, 255).astype(np.uint8)
    sauvola = binarise_sauvola(gray, window=31, k=0.2) == 0
    assert (sauvola & strokes).sum() / strokes.sum() >= 0.97
    assert (~sauvola & ~strokes).sum() / (~strokes).sum() >= 0.99
    # One global threshold cannot do this: it loses strokes or keeps background.
    otsu = binarise_otsu(gray) == 0
    assert (otsu & strokes).sum() / strokes.sum() < 0.9 or (
        (~otsu & ~strokes).sum() / (~strokes).sum() < 0.9)


def test_median_filter_removes_salt_and_pepper():
    line = render_line(thickness=4)
    noisy = line.copy()
    rng = np.random.default_rng(2)
    ys, xs = rng.integers(0, line.shape[0], 300), rng.integers(0, line.shape[1], 300)
    noisy[ys, xs] = 255 - noisy[ys, xs]
    filtered = median_filter(noisy, 3) < 128
    assert np.count_nonzero((noisy < 128)[ys, xs] != (line < 128)[ys, xs]) == 300
    assert np.count_nonzero(filtered[ys, xs] != (line < 128)[ys, xs]) < 20
    clean = np.ones_like(filtered)
    clean[ys, xs] = False
    # Strokes 4 pixels wide survive a 3x3 median: it only rounds their corners.
    changed = np.count_nonzero((filtered != (line < 128)) & clean)
    assert changed < 0.05 * np.count_nonzero(line < 128)


def test_remove_specks_keeps_strokes():
    gray = np.full((50, 100), 255, np.uint8)
    gray[10:40, 10:14] = 0  # a stroke of 120 pixels
    gray[5, 50] = gray[20:22, 70:72] = gray[45, 90:93] = 0  # specks of 1, 4 and 3 pixels
    cleaned = remove_specks(gray, min_area=5)
    expected = np.full_like(gray, 255)
    expected[10:40, 10:14] = 0
    np.testing.assert_array_equal(cleaned, expected)


@pytest.mark.parametrize("font", [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_COMPLEX,
                                  cv2.FONT_HERSHEY_SCRIPT_SIMPLEX])
@pytest.mark.parametrize("angle", [-8.0, -3.5, 0.0, 2.0, 6.5])
def test_skew_is_estimated_and_undone_within_half_a_degree(font, angle):
    skewed, _ = rotate(render_line(font=font), angle)
    assert abs(estimate_skew(ink_mask(skewed)) - angle) <= 0.5
    assert abs(estimate_skew(ink_mask(deskew(skewed)))) <= 0.5


@pytest.mark.parametrize("angle", [-25.0, -10.0, 12.0, 30.0])
def test_slant_is_estimated_and_undone(angle):
    line = render_line(scale=2.0, thickness=3)
    upright = estimate_slant(ink_mask(line))
    assert abs(upright) <= 1.0  # the font itself is upright
    slanted = shear(line, angle)
    assert abs(estimate_slant(ink_mask(slanted)) - angle) <= 1.5
    assert abs(estimate_slant(ink_mask(deslant(slanted)))) <= 1.5


def test_shear_and_rotate_geometry():
    bar = np.full((101, 20), 255, np.uint8)
    bar[:, 5] = 0
    sheared = shear(bar, 45.0)  # tan 45 = 1: the top moves right by the height - 1
    assert sheared.shape == (101, 120)
    assert np.flatnonzero(sheared[0] < 128).tolist() == [105]
    assert np.flatnonzero(sheared[100] < 128).tolist() == [5]
    square = np.zeros((50, 100), np.uint8)
    turned, matrix = rotate(square, 90.0, fill=255)
    assert turned.shape == (100, 50) and not turned.any()  # nothing cut off
    corner = matrix @ np.array([0.0, 0.0, 1.0])  # top left goes to bottom left
    np.testing.assert_allclose(corner, [0.0, 99.0], atol=1e-6)


def test_crop_to_ink_keeps_a_margin():
    gray = np.full((100, 200), 255, np.uint8)
    gray[40:60, 30:130] = 0
    np.testing.assert_array_equal(crop_to_ink(gray, 0.1).shape, (24, 104))
    assert crop_to_ink(gray, 0.0).shape == (20, 100)
    edge = np.full((30, 40), 255, np.uint8)
    edge[0:10, 0:20] = 0  # ink at the border: the margin is padded with paper
    out = crop_to_ink(edge, 0.5)
    assert out.shape == (20, 30) and out[0, 0] == 255 and out[5, 5] == 0
    blank = np.full((30, 40), 255, np.uint8)
    assert crop_to_ink(blank) is blank


@pytest.mark.parametrize("shape", [(37, 113), (64, 64), (200, 1500), (1, 1), (9, 1000)])
def test_scale_to_height_is_exact_and_keeps_the_aspect(shape):
    out = scale_to_height(np.full(shape, 255, np.uint8), 64)
    assert out.shape == (64, max(1, round(shape[1] * 64 / shape[0])))


def test_scale_to_height_bounds_the_width_of_flat_images():
    out = scale_to_height(np.full((2, 5000), 255, np.uint8), 64)
    assert out.shape[0] == 64 and out.shape[1] <= MAX_ASPECT * 64


# --- the chain ----------------------------------------------------------------------------

def test_default_chain_on_real_handwritten_digits():
    line = digit_line()
    out = preprocess_line(line, PreprocessConfig())
    assert out.dtype == np.float32 and out.shape[0] == 64
    ink = ink_mask(line)
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    # Cropped to the ink (5 % margin) and scaled: the width follows the ink box.
    ink_h, ink_w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    margin = round(0.05 * ink_h)
    assert abs(out.shape[1] - (ink_w + 2 * margin) * 64 / (ink_h + 2 * margin)) <= 1
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert np.median(out) == 0.0 and out.max() > 0.95  # paper 0, ink 1
    assert out[:, :2].mean() < 0.02  # the margin is paper
    assert 0.05 < (out > 0.5).mean() < 0.5
    assert len(np.unique(out)) > 10  # gray levels kept: no binarisation by default


def test_full_chain_straightens_a_skewed_slanted_line():
    line = shear(render_line(scale=2.0, thickness=3), 20.0)
    skewed, _ = rotate(line, 4.0)
    config = PreprocessConfig(deskew=True, slant=True, binarise="sauvola", median=3,
                              min_component=4)
    out = normalise_line(skewed, config)
    assert out.shape[0] == 64
    assert abs(estimate_skew(ink_mask(out))) <= 1.0
    assert abs(estimate_slant(ink_mask(out))) <= 3.0
    np.testing.assert_array_equal(normalise_line(skewed, config), out)  # pure: same again


def test_mean_std_standardises_each_line():
    out = preprocess_line(digit_line(), PreprocessConfig(mean_std=True))
    assert abs(float(out.mean())) < 1e-5 and abs(float(out.std()) - 1.0) < 1e-4
    blank = preprocess_line(np.full((30, 90), 255, np.uint8), PreprocessConfig(mean_std=True))
    assert not blank.any()


def test_ifnenit_scans_load_and_preprocess(shared_data):
    scans = sorted((shared_data / "ifnenit_samples").glob("*.tif"))
    assert len(scans) == 20
    full = PreprocessConfig(deskew=True, slant=True, binarise="sauvola", median=3,
                            min_component=4)
    for scan in scans:
        image = load_image(scan)
        assert image.ndim == 2 and set(np.unique(image)) == {0, 255}
        for config in (PreprocessConfig(), full):
            out = preprocess_line(image, config)
            assert out.shape[0] == 64 and 64 <= out.shape[1] <= 64 * 12, scan.name
            assert np.isfinite(out).all() and out.max() > 0.9, scan.name
            assert 0.03 < (out > 0.5).mean() < 0.5, scan.name


def test_baseline_is_the_bottom_of_the_core():
    from mdrnn.pipelines.geometry import estimate_baseline

    line = np.full((40, 100), 255, np.uint8)
    line[15:30, 10:90] = 0         # the x-height band of a word
    line[30:38, 20:24] = 0         # a descender
    line[5:15, 60:63] = 0          # an ascender
    assert estimate_baseline(line) == (30, 10, 90)
    assert estimate_baseline(np.full((20, 30), 200, np.uint8)) is None


def test_the_pixel_limit_is_set_by_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "page.png"
    cv2.imwrite(str(path), np.full((100, 200), 255, np.uint8))
    assert load_image(path).shape == (100, 200)
    monkeypatch.setenv("MDRNN_MAX_PIXELS", "10000")
    with pytest.raises(InputError, match=r"page\.png: image of 200x100 pixels is above the "
                                         r"limit of 10,000 pixels"):
        load_image(path)
    monkeypatch.setenv("MDRNN_MAX_PIXELS", "lots")
    with pytest.raises(InputError, match="MDRNN_MAX_PIXELS='lots'"):
        load_image(path)


@pytest.mark.parametrize("right_to_left", [False, True])
def test_column_map_finds_the_image_columns_of_line_columns(right_to_left):
    image = np.full((40, 300), 255, np.uint8)
    image[10:30, 50:60] = 0    # a stroke at columns 50-59
    image[10:30, 200:240] = 0  # and one at 200-239
    config = PreprocessConfig(height=32, right_to_left=right_to_left)
    line, columns = preprocess_line(image, config, columns=True)
    assert np.array_equal(line, preprocess_line(image, config))
    inked = np.flatnonzero(line.max(axis=0) > 0.5)
    runs = np.split(inked, np.flatnonzero(np.diff(inked) > 1) + 1)
    mapped = sorted(columns.to_image(int(r[0]), int(r[-1]) + 1) for r in runs)
    assert len(mapped) == 2
    for (a, b), (start, end) in zip(mapped, [(50, 60), (200, 240)], strict=True):
        assert abs(a - start) <= 2 and abs(b - end) <= 2
    assert preprocess_line(image, dataclasses.replace(config, deskew=True), columns=True)[1] \
        is None
