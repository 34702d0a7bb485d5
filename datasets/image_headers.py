"""Image file headers: format, size, alpha and orientation, read without decoding pixels.

What lets `mdrnn.datasets.imageio` refuse an image that claims 20000 x 20000
pixels before allocating them. PNG, JPEG, TIFF (incl. BigTIFF), BMP, PBM/PGM/PPM,
WebP and GIF.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mdrnn.errors import InputError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
# SOF markers carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_MAX_SEGMENTS = 10_000


@dataclass(frozen=True)
class ImageHeader:
    """What the file header says, read without decoding pixels.

    Args:
        format: "png", "jpeg", "tiff", "bmp", "pnm", "webp" or "gif".
        width: width in pixels.
        height: height in pixels.
        alpha: whether the image may carry an alpha channel.
        orientation: EXIF orientation (1 to 8) that the decoder does not apply
            itself when the alpha channel is read (PNG eXIf only); 1 otherwise.
    """

    format: str
    width: int
    height: int
    alpha: bool = False
    orientation: int = 1


def read_header(path: str | Path) -> ImageHeader:
    """Read format, size and alpha of an image file from its header alone.

    Args:
        path: the image file.

    Raises:
        InputError: the file is missing, empty, truncated or not a supported image.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(32)
            header = _parse_header(f, head)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not an image") from None
    except (struct.error, ValueError, IndexError):
        raise InputError(f"{path}: malformed or truncated image header") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if header is None:
        if not head:
            raise InputError(f"{path}: empty file")
        raise InputError(f"{path}: not a supported image (png, jpeg, tiff, bmp, pnm, webp, gif)")
    if header.width <= 0 or header.height <= 0:
        raise InputError(f"{path}: image header gives size {header.width}x{header.height}")
    return header


def png_complete(path: Path) -> bool:
    """Whether a PNG file ends with its IEND chunk (a truncated one does not)."""
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - len(_PNG_IEND)))
        return f.read() == _PNG_IEND


def _parse_header(f: BinaryIO, head: bytes) -> ImageHeader | None:
    if head.startswith(_PNG_SIGNATURE):
        return _png_header(f)
    if head.startswith(b"\xff\xd8"):
        return _jpeg_header(f)
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return _tiff_header(f, head)
    if head.startswith(b"BM"):
        return _bmp_header(f, head)
    if len(head) > 2 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace():
        return _pnm_header(f)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return _webp_header(head)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        width, height = struct.unpack_from("<HH", head, 6)
        return ImageHeader("gif", width, height)
    return None


def _png_header(f: BinaryIO) -> ImageHeader:
    pos, width, height, alpha, orientation = 8, 0, 0, False, 1
    for index in range(_MAX_SEGMENTS):
        f.seek(pos)
        length, kind = struct.unpack(">I4s", f.read(8))
        if index == 0 and kind != b"IHDR":
            raise ValueError("IHDR is not the first chunk")
        if kind == b"IHDR":
            width, height, _, colour_type = struct.unpack(">IIBB", f.read(10))
            alpha = colour_type in (4, 6)
        elif kind == b"tRNS":
            alpha = True
        elif kind == b"eXIf":
            orientation = _exif_orientation(f.read(min(length, 1 << 16)))
        elif kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    return ImageHeader("png", width, height, alpha, orientation)


def _jpeg_header(f: BinaryIO) -> ImageHeader:
    pos = 2
    for _ in range(_MAX_SEGMENTS):
        f.seek(pos)
        if f.read(1) != b"\xff":
            raise ValueError("JPEG segment does not start with a marker")
        byte = f.read(1)
        while byte == b"\xff":  # fill bytes before a marker
            byte = f.read(1)
        if not byte:
            break
        marker = byte[0]
        pos = f.tell()
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue  # markers without a length
        if marker in (0xD9, 0xDA):
            break  # end of image or start of scan before any frame header
        (length,) = struct.unpack(">H", f.read(2))
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">xHH", f.read(5))
            return ImageHeader("jpeg", width, height)
        pos += length
    raise ValueError("no JPEG frame header")


_TIFF_SIZES = {3: ("H", 2), 4: ("I", 4), 16: ("Q", 8)}


def _tiff_header(f: BinaryIO, head: bytes) -> ImageHeader:
    order = "<" if head[:2] == b"II" else ">"
    big = head[2:4] in (b"+\x00", b"\x00+")
    if big:
        (ifd,) = struct.unpack_from(order + "Q", head, 8)
        count_fmt, entry_size, value_size = "Q", 20, 8
    else:
        (ifd,) = struct.unpack_from(order + "I", head, 4)
        count_fmt, entry_size, value_size = "H", 12, 4
    f.seek(ifd)
    (count,) = struct.unpack(order + count_fmt, f.read(struct.calcsize(count_fmt)))
    entries = f.read(entry_size * min(count, _MAX_SEGMENTS))
    tags = {}
    for i in range(0, len(entries) - entry_size + 1, entry_size):
        tag, kind = struct.unpack_from(order + "HH", entries, i)
        if kind in _TIFF_SIZES and tag in (256, 257, 262, 277, 338):
            code, size = _TIFF_SIZES[kind]
            if size <= value_size:  # first value, stored inline
                offset = i + entry_size - value_size
                (tags[tag],) = struct.unpack_from(order + code, entries, offset)
    # ExtraSamples 1 (associated) or 2 (unassociated) is an alpha channel; some
    # writers leave the tag out and only add a sample to gray (1) or RGB (3).
    samples, photometric = tags.get(277, 1), tags.get(262)
    alpha = tags.get(338) in (1, 2) or (samples == 2 and photometric in (0, 1)) or (
        samples == 4 and photometric == 2)
    return ImageHeader("tiff", tags.get(256, 0), tags.get(257, 0), alpha)


def _bmp_header(f: BinaryIO, head: bytes) -> ImageHeader:
    f.seek(14)
    info = f.read(60)
    (dib_size,) = struct.unpack_from("<I", info, 0)
    if dib_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack_from("<HH", info, 4)
        return ImageHeader("bmp", width, height)
    width, height, _, bits = struct.unpack_from("<iiHH", info, 4)
    # A 32-bit BMP with a V3+ header declares an alpha mask (an all-zero alpha
    # channel is treated as absent when decoding).
    alpha = bits == 32 and dib_size >= 56 and struct.unpack_from("<I", info, 52)[0] != 0
    return ImageHeader("bmp", width, abs(height), alpha)


def _pnm_header(f: BinaryIO) -> ImageHeader:
    f.seek(0)
    text = f.read(1024)
    tokens: list[bytes] = []
    for line in text.split(b"\n"):
        tokens += line.split(b"#", 1)[0].split()
        if len(tokens) >= 3:
            break
    return ImageHeader("pnm", int(tokens[1]), int(tokens[2]))


def _webp_header(head: bytes) -> ImageHeader:
    kind = head[12:16]
    if kind == b"VP8X":
        flags = head[20]
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return ImageHeader("webp", width, height, bool(flags & 0x10))
    if kind == b"VP8L":
        (bits,) = struct.unpack_from("<I", head, 21)
        return ImageHeader("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1,
                           bool(bits >> 28 & 1))
    if kind == b"VP8 ":
        width, height = struct.unpack_from("<HH", head, 26)
        return ImageHeader("webp", width & 0x3FFF, height & 0x3FFF)
    raise ValueError("unknown WebP chunk")


def _exif_orientation(exif: bytes) -> int:
    """The Orientation tag (0x0112) of an EXIF block in TIFF layout; 1 if absent."""
    if exif.startswith(b"Exif\x00\x00"):
        exif = exif[6:]
    order = {b"II": "<", b"MM": ">"}.get(exif[:2])
    if order is None or len(exif) < 8:
        return 1
    (ifd,) = struct.unpack_from(order + "I", exif, 4)
    (count,) = struct.unpack_from(order + "H", exif, ifd)
    for i in range(min(count, (len(exif) - ifd - 2) // 12)):
        tag, kind, _, value = struct.unpack_from(order + "HHIH", exif, ifd + 2 + 12 * i)
        if tag == 0x0112 and kind == 3:
            return value if 1 <= value <= 8 else 1
    return 1
