"""A small student of emotion2vec+large: raw 16 kHz speech -> an estimate of its 1024-d utterance vector.

Shipped (``audio=e2v_student`` and the raw-speech fallback of the precomputed encoder) only when its
weights file lies beside this module; :func:`shipped` says whether it does.
"""

from __future__ import annotations

from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent / "student_e2v.safetensors"


def shipped(dim: int = 1024) -> bool:
    """True when the student's weights ship with the package and predict ``dim``-d vectors."""
    if not WEIGHTS.is_file():
        return False
    from safetensors import safe_open

    with safe_open(str(WEIGHTS), "np") as f:
        return int(f.metadata().get("dim", 0)) == int(dim)
