"""Small plotting helpers shared by the figures (matplotlib is imported by the callers)."""

from __future__ import annotations

import numpy as np


def annotate_cells(
    ax,
    M,
    fmt: str = "{:.2f}",
    fontsize: float = 7,
    min_value: float | None = None,
    white_above: float | None = None,
    skip_diagonal: bool = False,
) -> None:
    """Write the value of each cell of a heat map ``M`` [R, C] drawn with ``ax.imshow`` at its
    centre. NaN cells, cells below ``min_value`` and (``skip_diagonal``) the diagonal stay blank;
    values above ``white_above`` are written in white (dark cells)."""
    M = np.asarray(M, np.float64)
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            v = M[i, j]
            if v != v or (skip_diagonal and i == j) or (min_value is not None and v < min_value):
                continue
            color = "white" if white_above is not None and v > white_above else "black"
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=fontsize, color=color)


def save_figure(fig, path, dpi: int = 110):
    """Lay out, write (parent folders created) and close a matplotlib figure; returns the Path."""
    from pathlib import Path

    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
