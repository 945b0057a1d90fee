"""Promotion gates: absolute thresholds and relative checks (vs the champion, vs speech-direct).

Pure functions on metric dicts (no MLflow here): :func:`evaluate_gates` returns a :class:`GateReport`
that the registry step stores as tags and as a JSON artifact on the candidate model version.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from cmet.errors import ConfigError


@dataclass
class Check:
    name: str
    metric: str
    value: float | None
    op: str  # ">=" | "<=" | ">"
    threshold: float | None
    passed: bool
    note: str = ""

    def line(self) -> str:
        v = "missing" if self.value is None else f"{self.value:.4f}"
        t = "-" if self.threshold is None else f"{self.threshold:.4f}"
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.metric}={v} {self.op} {t} {self.note}".rstrip()


@dataclass
class GateReport:
    passed: bool
    checks: list[Check] = field(default_factory=list)
    champion_version: str | None = None

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        head = "gate PASSED" if self.passed else f"gate FAILED ({', '.join(c.name for c in self.failed)})"
        return "\n".join([head, *("  " + c.line() for c in self.checks)])

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "champion_version": self.champion_version,
            "checks": [asdict(c) for c in self.checks],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def tags(self) -> dict[str, str]:
        """Flat string tags for the model version (``gate.passed``, ``gate.<check>`` = pass/fail)."""
        t = {"gate.passed": str(self.passed).lower()}
        for c in self.checks:
            t[f"gate.{c.name}"] = (
                f"{'pass' if c.passed else 'fail'} ({'missing' if c.value is None else round(c.value, 4)})"
            )
        return t


def _num(metrics: dict, key: str) -> float | None:
    v = metrics.get(key)
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def evaluate_gates(
    metrics: dict, gates, champion_metrics: dict | None = None, champion_version: str | None = None
) -> GateReport:
    """Check ``metrics`` (a candidate's evaluation) against ``gates`` (``cfg.gates``, a typed
    :class:`cmet.conf.GatesConfig`).

    ``champion_metrics`` must come from the same evaluation set (the caller re-evaluates the champion
    when its recorded evaluation-set hash differs). No champion -> the relative champion check passes
    with a note (the first candidate that meets the absolute gates becomes champion).
    """
    from omegaconf import OmegaConf

    missing_policy = gates.missing_metric
    if missing_policy not in ("fail", "skip"):
        raise ConfigError(f"gates.missing_metric must be 'fail' or 'skip', got {missing_policy!r}")
    checks: list[Check] = []

    def add(
        name: str,
        metric: str,
        value: float | None,
        op: str,
        thr: float | None,
        note: str = "",
        required: bool = True,
    ) -> None:
        if value is None or thr is None:
            ok = (missing_policy == "skip" or not required) and value is None
            if value is None and not required:
                note = "not measured by this evaluation (required: false)"
            checks.append(
                Check(name, metric, value, op, thr, ok, note or ("metric missing" if value is None else ""))
            )
            return
        ok = {">=": value >= thr, "<=": value <= thr, ">": value > thr}[op]
        checks.append(Check(name, metric, value, op, thr, ok, note))

    for name, spec in gates.absolute.items():
        if OmegaConf.is_missing(spec, "metric") or (spec.min is None and spec.max is None):
            raise ConfigError(f"gates.absolute.{name} needs 'metric' and 'min' or 'max'; got {spec!r}")
        v = _num(metrics, spec.metric)
        if spec.min is not None:
            add(name, spec.metric, v, ">=", spec.min, required=spec.required)
        if spec.max is not None:
            add(
                name + ("_max" if spec.min is not None else ""),
                spec.metric,
                v,
                "<=",
                spec.max,
                required=spec.required,
            )

    rel = gates.relative
    if rel.baseline:
        m, b = rel.metric, rel.baseline
        bv = _num(metrics, b)
        add(
            "beats_speech_direct",
            m,
            _num(metrics, m),
            ">",
            None if bv is None else bv + rel.baseline_margin,
            note=f"(baseline {b})",
        )
    if rel.metric is not None:
        m = rel.metric
        if champion_metrics is None:
            checks.append(
                Check("not_worse_than_champion", m, _num(metrics, m), ">=", None, True, "no champion yet")
            )
        else:
            cv = _num(champion_metrics, m)
            margin = rel.champion_margin
            add(
                "not_worse_than_champion",
                m,
                _num(metrics, m),
                ">=",
                None if cv is None else cv - margin,
                note=f"(champion v{champion_version}: {cv if cv is None else round(cv, 4)}, margin {margin})",
            )
    return GateReport(all(c.passed for c in checks), checks, champion_version)
