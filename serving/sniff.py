"""What an upload is, from its bytes (not from the declared content type), and safe ``.npy`` reading.

:func:`sniff` reads the first bytes of a file and names its container: a client that sends a file
without ``;type=`` (curl's ``application/octet-stream``) is served when the bytes are right, and a
file that claims ``video/mp4`` but holds text is refused. :func:`read_npy` parses a ``.npy`` header
with ``numpy.lib.format`` and bounds rank, dtype, element count and file size *before* any data is
read, then checks that the values are finite and within a sane range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cmet.errors import DataError
from serving.errors import PayloadTooLargeError, UnsupportedMediaError

KINDS = {
    "video": ("mp4", "mov", "webm", "mkv", "avi"),
    "audio": ("wav", "flac", "mp3", "ogg", "m4a", "webm"),
    "image": ("png", "jpeg", "webp"),
    "npy": ("npy",),
}
_MP4_BRANDS_AUDIO = (b"M4A ", b"M4B ", b"dash")
_HEAD_BYTES = 64


def container(head: bytes) -> str | None:
    """The container named by a file's first bytes: mp4 | mov | webm | mkv | avi | wav | flac | mp3 |
    ogg | m4a | png | jpeg | webp | npy, or None when none matches."""
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WAVE": "wav", b"AVI ": "avi", b"WEBP": "webp"}.get(head[8:12])
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: matroska and webm
        return "webm" if b"webm" in head[:_HEAD_BYTES] else "mkv"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _MP4_BRANDS_AUDIO:
            return "m4a"
        return "mov" if brand == b"qt  " else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):  # QuickTime without ftyp
        return "mov"
    return None


def sniff(path: Path, kind: str, field: str) -> str:
    """The container of ``path``, which must be one of ``KINDS[kind]`` -> its name.

    Raises UnsupportedMediaError naming the field, what was expected and what was found."""
    with open(path, "rb") as f:
        head = f.read(_HEAD_BYTES)
    found = container(head)
    if found in KINDS[kind] or (kind == "audio" and found in ("mp4", "mkv")):
        return str(found)
    what = found or "unrecognised bytes"
    raise UnsupportedMediaError(f"{field}: expected {kind} ({', '.join(KINDS[kind])}), the file holds {what}")


def read_npy(path: Path, field: str, *, max_values: int, max_abs: float) -> np.ndarray:
    """A ``.npy`` file -> its float32 array, checked before and after loading.

    Before any data is read: a valid header (``read_magic`` + ``read_array_header_*``, header size
    bounded), no object/pickle dtype, a numeric dtype, rank 1..3, at most ``max_values`` elements,
    and a file exactly as long as the header says. After: every value finite with ``|x| <= max_abs``.
    """
    fmt = np.lib.format
    with open(path, "rb") as f:
        try:
            version = fmt.read_magic(f)
            read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, fortran, dtype = read_header(f, max_header_size=10_000)
        except (ValueError, OSError, EOFError, SyntaxError) as e:
            raise UnsupportedMediaError(f"{field}: not a valid .npy file ({_short(e)})") from None
        offset = f.tell()
    if dtype.hasobject:
        raise DataError(f"{field}: object arrays (pickles) are not accepted; send a numeric [k, D] array")
    if dtype.kind not in "fiu":
        raise DataError(f"{field}: dtype {dtype} is not a real number type (float or int expected)")
    if not 1 <= len(shape) <= 3:
        raise DataError(f"{field}: rank {len(shape)} (shape {shape}); expected (D,), (k, D) or (k, 1, D)")
    count = int(np.prod(shape, dtype=object))
    if count > max_values:
        raise PayloadTooLargeError(
            f"{field}: the header claims shape {shape} ({count} values); the limit is {max_values}"
        )
    expected = offset + count * dtype.itemsize
    actual = Path(path).stat().st_size
    if actual != expected:
        raise DataError(
            f"{field}: the header claims shape {shape} of {dtype} ({expected - offset} bytes of data), "
            f"the file holds {actual - offset}"
        )
    arr = np.load(path, allow_pickle=False)
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise DataError(f"{field}: contains NaN or inf (or values beyond float32)")
    big = float(np.abs(out).max()) if out.size else 0.0
    if big > max_abs:
        raise DataError(f"{field}: values up to {big:.3g}; speech features must lie within +-{max_abs:g}")
    return out


def _short(e: Exception) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text[:160]
