"""Shared helpers of the benchmarks: timing with spread, peak memory, hardware line, result files."""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def hardware() -> str:
    """One line naming the machine the figures were measured on."""
    cpu = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {gpu}, torch {torch.__version__}, torch threads {torch.get_num_threads()}"


@dataclass
class Timing:
    median_s: float
    p25_s: float
    p75_s: float
    n: int
    values: list[float] = field(default_factory=list)

    def fmt(self) -> str:
        return f"{self.median_s:.3f} s (IQR {self.p25_s:.3f}-{self.p75_s:.3f}, n={self.n})"


def time_it(fn: Callable[[], object], repeats: int = 3, warmup: int = 1) -> Timing:
    """Median and interquartile range of ``repeats`` wall-clock runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    vals = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        vals.append(time.perf_counter() - t)
    q = statistics.quantiles(vals, n=4) if len(vals) > 1 else [vals[0]] * 3
    return Timing(statistics.median(vals), q[0], q[2], len(vals), vals)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MiB).

    ``VmHWM`` of /proc/self/status (it starts afresh at exec); ``ru_maxrss`` is only the fallback, as on
    Linux it carries over the forking parent's peak into a child started with subprocess."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(code: str, timeout: int = 900) -> dict:
    """Run python ``code`` in a fresh interpreter that prints one JSON line last; returns it.

    Used for peak-memory figures, which must not be polluted by earlier sections.
    """
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"isolated benchmark failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def md_table(header: list[str], rows: list[list[object]]) -> str:
    def cell(x: object) -> str:
        if isinstance(x, float):
            return f"{x:.1f}" if abs(x) >= 10 else f"{x:.3f}"
        return str(x)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_result(name: str, markdown: str, data: dict, out: Path | None = None) -> Path:
    """``<out>/<name>.md`` and ``<out>/<name>.json`` (default out: bench/results)."""
    out = Path(out) if out is not None else RESULTS
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.md").write_text(markdown + "\n")
    (out / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))
    return out / f"{name}.md"


def load_average() -> str:
    """The 1/5/15-minute load averages (other work on the machine inflates timings)."""
    try:
        a, b, c = os.getloadavg()
        return f"load average {a:.2f} / {b:.2f} / {c:.2f} (1/5/15 min) on {os.cpu_count()} cores"
    except OSError:
        return "load average unknown"


def pct(x: float | None) -> str:
    """A share as a percentage with one decimal ('n/a' for None/NaN)."""
    if x is None or x != x:
        return "n/a"
    return f"{100 * x:.1f}"


def mean_sd(xs) -> tuple[float, float]:
    """Mean and sample standard deviation of the finite values (NaN, NaN when none)."""
    vals = [float(x) for x in xs if x is not None and x == x]
    if not vals:
        return float("nan"), float("nan")
    m = sum(vals) / len(vals)
    sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return m, sd


def fmt_pct_sd(xs) -> str:
    """'91.2 ± 3.4' (percent, mean ± sd over folds) of a list of shares."""
    m, sd = mean_sd(xs)
    if m != m:
        return "n/a"
    return f"{100 * m:.1f} ± {100 * sd:.1f}" if len(xs) > 1 else f"{100 * m:.1f}"
