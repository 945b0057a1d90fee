"""Uploads recognised by their bytes, and .npy files bounded before they are loaded."""

from __future__ import annotations

import numpy as np
import pytest

from cmet.errors import DataError
from serving.errors import PayloadTooLargeError, UnsupportedMediaError
from serving.inputs import Limits, check_upload, load_features
from serving.sniff import container, read_npy

HEADS = {
    "mp4": b"\0\0\0\x20ftypisom\0\0\x02\0",
    "mov": b"\0\0\0\x14ftypqt  \0\0\0\0",
    "m4a": b"\0\0\0\x20ftypM4A \0\0\0\0",
    "webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm",
    "mkv": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska",
    "avi": b"RIFF\0\0\0\0AVI LIST",
    "wav": b"RIFF\0\0\0\0WAVEfmt ",
    "flac": b"fLaC\0\0\0\x22",
    "mp3": b"ID3\x04\0\0\0\0\0\0",
    "ogg": b"OggS\0\x02",
    "png": b"\x89PNG\r\n\x1a\n\0\0",
    "jpeg": b"\xff\xd8\xff\xe0\0\x10JFIF",
    "npy": b"\x93NUMPY\x01\x00",
}


@pytest.mark.parametrize("name", sorted(HEADS))
def test_container_by_magic(name):
    assert container(HEADS[name] + b"\0" * 40) == name


def test_unknown_bytes_are_none():
    assert container(b"hello world, not a media file") is None
    assert container(b"") is None


def test_check_upload_goes_by_bytes_and_fixes_the_suffix(tmp_path):
    blob = tmp_path / "blob"  # what a client sends without a filename extension or ;type=
    blob.write_bytes(HEADS["wav"] + b"\0" * 100)
    out = check_upload(blob, "target_speech", Limits(), kind="audio")
    assert out.suffix == ".wav" and out.is_file() and not blob.exists()
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"<html>not a video</html>" * 10)
    with pytest.raises(UnsupportedMediaError, match="video: expected video"):
        check_upload(fake, "video", Limits(), kind="video")


def _npy_with_header(path, shape, dtype="<f4", data_bytes=b""):
    """A .npy whose header claims ``shape`` and whose data is ``data_bytes`` (a hostile file)."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": tuple(shape)}).encode()
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + b" " * pad + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + data_bytes)
    return path


def test_npy_header_claiming_a_huge_shape_is_refused_before_loading(tmp_path):
    p = _npy_with_header(tmp_path / "h.npy", (10**12, 64), data_bytes=np.ones(320, np.float32).tobytes())
    with pytest.raises(PayloadTooLargeError, match=r"claims shape \(1000000000000, 64\)"):
        read_npy(p, "target_features", max_values=10_000, max_abs=1e3)
    p = _npy_with_header(tmp_path / "s.npy", (100, 16), data_bytes=np.ones(320, np.float32).tobytes())
    with pytest.raises(DataError, match="the file holds 1280"):
        read_npy(p, "target_features", max_values=10_000, max_abs=1e3)
    p = _npy_with_header(tmp_path / "r.npy", (2, 2, 2, 2), data_bytes=np.ones(16, np.float32).tobytes())
    with pytest.raises(DataError, match="rank 4"):
        read_npy(p, "f", max_values=10_000, max_abs=1e3)
    p = _npy_with_header(tmp_path / "c.npy", (4,), dtype="<c8", data_bytes=np.ones(4, np.complex64).tobytes())
    with pytest.raises(DataError, match="not a real number type"):
        read_npy(p, "f", max_values=10_000, max_abs=1e3)
    bad = tmp_path / "b.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': oops}\n")
    with pytest.raises(UnsupportedMediaError, match="not a valid .npy"):
        read_npy(bad, "f", max_values=10_000, max_abs=1e3)


@pytest.mark.parametrize(
    "values",
    [
        np.full((2, 16), 1e30, np.float32),
        np.full((2, 16), 2**62, np.int64),
        np.full((2, 16), 1e300, np.float64),
    ],
)
def test_npy_values_out_of_range_are_refused(tmp_path, values):
    p = tmp_path / "v.npy"
    np.save(p, values)
    with pytest.raises(DataError, match="must lie within|NaN or inf"):
        load_features(p, 16, Limits())


def test_npy_in_range_ints_are_features(tmp_path):
    p = tmp_path / "i.npy"
    np.save(p, np.arange(32, dtype=np.int16).reshape(2, 16))
    out = load_features(p, 16, Limits())
    assert out.dtype == np.float32 and out.shape == (2, 16) and out[1, 15] == 31
