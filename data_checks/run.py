"""Run the suites of :mod:`data_checks.suites` with an ephemeral GX 1.x context and report.

:func:`check_raw` / :func:`check_features` return a :class:`CheckReport`; ``report.raise_if_failed()``
raises :class:`DataCheckError` (a :class:`~cmet.errors.DataError`) whose message lists the failing
expectations with a few offending rows, e.g.::

    data check 'raw' failed: 2 of 19 expectations
      - clips: expect_column_values_to_be_in_set(column=emotion) 1 row(s) unexpected, values ['furious'], rows ['c0003']
      - identities: expect_column_values_to_be_in_set(column=n_splits) 1 row(s), rows ['id01']

The full validation results are written as JSON (GX's own result dicts) and as a small HTML page.
"""

from __future__ import annotations

import html
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cmet.data.features import FeatureSet
from cmet.errors import DataError
from data_checks import suites as S

log = logging.getLogger(__name__)


class DataCheckError(DataError):
    """A data-check suite failed; ``.report`` holds the :class:`CheckReport`."""

    def __init__(self, message: str, report: CheckReport):
        super().__init__(message)
        self.report = report


@dataclass
class Failure:
    table: str
    expectation: str
    column: str | None
    kwargs: dict
    unexpected_count: int | None
    unexpected_values: list
    rows: list

    def line(self) -> str:
        kw = ", ".join(f"{k}={v}" for k, v in self.kwargs.items() if k not in ("column", "batch_id"))
        col = f"column={self.column}" + (f", {kw}" if kw else "") if self.column else kw
        s = f"{self.table}: {self.expectation}({col})"
        if self.unexpected_count is not None:
            s += f" {self.unexpected_count} row(s) unexpected"
        if self.unexpected_values:
            s += f", values {self.unexpected_values[:5]}"
        if self.rows:
            s += f", rows {self.rows[:5]}"
        return s


@dataclass
class CheckReport:
    stage: str
    success: bool
    n_expectations: int
    failures: list[Failure] = field(default_factory=list)
    results: dict = field(default_factory=dict)  # table -> GX result dict
    seconds: float = 0.0
    json_path: str | None = None
    html_path: str | None = None

    def summary(self) -> str:
        if self.success:
            return f"data check {self.stage!r} passed: {self.n_expectations} expectations"
        lines = [
            f"data check {self.stage!r} failed: {len(self.failures)} of {self.n_expectations} expectations"
        ]
        lines += [f"  - {f.line()}" for f in self.failures]
        if self.json_path:
            lines.append(f"  full report: {self.json_path}")
        return "\n".join(lines)

    def raise_if_failed(self) -> CheckReport:
        if not self.success:
            raise DataCheckError(self.summary(), self)
        return self

    def to_dict(self) -> dict:
        return {
            "stage": self.stage,
            "success": self.success,
            "n_expectations": self.n_expectations,
            "failures": [f.__dict__ for f in self.failures],
            "seconds": round(self.seconds, 3),
            "results": self.results,
        }

    def save(self, folder: str | Path) -> CheckReport:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        jp = folder / f"data_check_{self.stage}.json"
        jp.write_text(json.dumps(self.to_dict(), indent=2, default=str))
        hp = folder / f"data_check_{self.stage}.html"
        hp.write_text(_html(self))
        self.json_path, self.html_path = str(jp), str(hp)
        return self


def _html(rep: CheckReport) -> str:
    rows = []
    for table, res in rep.results.items():
        for r in res.get("results", []):
            cfg = r.get("expectation_config", {})
            kw = {k: v for k, v in cfg.get("kwargs", {}).items() if k != "batch_id"}
            ok = r.get("success")
            unexp = r.get("result", {}).get("partial_unexpected_list", [])
            rows.append(
                f"<tr class={'ok' if ok else 'bad'}><td>{html.escape(table)}</td><td>{html.escape(cfg.get('type', ''))}</td>"
                f"<td>{html.escape(json.dumps(kw, default=str))}</td><td>{'pass' if ok else 'FAIL'}</td>"
                f"<td>{html.escape(str(unexp[:10]))}</td></tr>"
            )
    status = "PASSED" if rep.success else "FAILED"
    return (
        "<!doctype html><meta charset=utf-8><title>data check</title><style>body{font-family:sans-serif}"
        "td,th{border:1px solid #ccc;padding:3px 6px}.bad{background:#fdd}.ok{background:#efe}</style>"
        f"<h1>Data check <code>{rep.stage}</code>: {status}</h1><pre>{html.escape(rep.summary())}</pre>"
        "<table><tr><th>table</th><th>expectation</th><th>kwargs</th><th>result</th><th>unexpected (sample)</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def validate_tables(stage: str, tables: dict[str, pd.DataFrame], suites: dict[str, list]) -> CheckReport:
    """Validate each table with its suite in one ephemeral GX context; collect the failures."""
    import great_expectations as gx

    t0 = time.perf_counter()
    ctx = gx.get_context(mode="ephemeral")
    try:  # GX's per-expectation tqdm bars drown the flow's log
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    except Exception:  # pragma: no cover - older/newer GX without the knob
        pass
    ds = ctx.data_sources.add_pandas(name=f"cmet_{stage}")
    results: dict[str, dict] = {}
    failures: list[Failure] = []
    n = 0
    for table, expectations in suites.items():
        df = tables[table]
        asset = ds.add_dataframe_asset(name=table)
        bd = asset.add_batch_definition_whole_dataframe(f"{table}_all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=f"{stage}.{table}"))
        for e in expectations:
            suite.add_expectation(e)
        n += len(expectations)
        vd = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=f"{stage}.{table}", data=bd, suite=suite)
        )
        key = S.ROW_KEYS.get(table)
        fmt: dict = {"result_format": "COMPLETE"}
        if key:
            fmt["unexpected_index_column_names"] = [key]
        res = vd.run(batch_parameters={"dataframe": df}, result_format=fmt)
        d = res.to_json_dict()
        # keep the JSON small: COMPLETE lists every unexpected row; keep the partial ones only
        for r in d.get("results", []):
            rr = r.get("result") or {}
            for big in ("unexpected_list", "unexpected_index_list", "unexpected_index_query"):
                if big in rr and isinstance(rr[big], list) and len(rr[big]) > 20:
                    rr[big] = rr[big][:20]
        results[table] = d
        for r in res.results:
            if r.success:
                continue
            cfg = r.expectation_config
            rr = r.result or {}
            idx = rr.get("unexpected_index_list") or []
            rows = [x.get(key) if isinstance(x, dict) else x for x in idx][:20] if key else []
            exc = (r.exception_info or {}).get("exception_message") if hasattr(r, "exception_info") else None
            kwargs = {k: v for k, v in dict(cfg.kwargs).items() if k != "batch_id"}
            if exc:
                kwargs["error"] = exc
            failures.append(
                Failure(
                    table=table,
                    expectation=cfg.type,
                    column=kwargs.pop("column", None),
                    kwargs=kwargs,
                    unexpected_count=rr.get("unexpected_count"),
                    unexpected_values=list(rr.get("partial_unexpected_list") or [])[:10],
                    rows=rows,
                )
            )
    rep = CheckReport(stage, not failures, n, failures, results, time.perf_counter() - t0)
    (log.info if rep.success else log.error)(rep.summary())
    return rep


def check_raw(clips: pd.DataFrame | FeatureSet, lim: S.CheckLimits) -> CheckReport:
    """Validate the clip table (and its per-identity and per-cell derived tables)."""
    df = S.clip_table(clips, check_files=lim.check_files)
    tables = {"clips": df, "identities": S.identity_table(df), "cells": S.cell_table(df)}
    return validate_tables("raw", tables, S.raw_suites(lim))


def check_features(fs: FeatureSet, lim: S.CheckLimits) -> CheckReport:
    """Validate the feature arrays: finite values, norms in range, dimensions, frame rows."""
    per_clip = S.feature_clip_table(fs)
    tables = {"feature_clips": per_clip, "dims": S.dims_table(fs)}
    return validate_tables("features", tables, S.feature_suites(lim, list(per_clip.columns)))
