"""Helpers of the speech tests: waves and files made on the fly (no data shipped)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest


def harmonic(
    f0: float = 150.0, sr: int = 16000, dur: float = 1.0, amp: float = 0.3, n_harm: int = 10, seed: int = 0
) -> np.ndarray:
    """A vowel-like harmonic tone [S] with a little noise."""
    t = np.arange(int(sr * dur)) / sr
    x = sum(amp / k * np.sin(2 * np.pi * f0 * k * t) for k in range(1, n_harm + 1))
    return (x + 1e-3 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def tone():
    """tone(f0, sr, dur, amp) -> a harmonic test wave."""
    return harmonic


@pytest.fixture
def ffmpeg():
    """Run the bundled ffmpeg: ffmpeg(args...) -> None (raises on failure)."""
    from cmet.audio.io import ffmpeg_exe

    exe = ffmpeg_exe()

    def _run(*args: str) -> None:
        subprocess.run([exe, "-hide_banner", "-v", "error", "-y", *args], check=True, capture_output=True)

    return _run


@pytest.fixture
def wav_file(tmp_path):
    """wav_file(name, wave, sr, channels=1) -> Path."""
    import soundfile as sf

    def _make(name: str, wave: np.ndarray, sr: int = 16000) -> Path:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(p), wave, sr)
        return p

    return _make
