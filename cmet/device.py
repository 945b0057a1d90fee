"""Pick the compute device once; everything else receives it (no bare ``.cuda()``)."""

from __future__ import annotations

import torch


def pick_device(preference: str = "auto") -> torch.device:
    """``auto`` -> CUDA if available, else CPU; ``cpu``/``cuda``/``cuda:1`` as given."""
    if preference in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(preference)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from cmet.errors import ConfigError

        raise ConfigError(
            f"device={preference!r} requested but CUDA is not available; use device=auto or cpu"
        )
    return dev
