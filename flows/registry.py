"""MLflow 3 model registry with aliases (no stages): register, gate-driven promotion, promote, rollback.

Conventions on the registered model ``cfg.pipeline.registered_model``:

* alias ``champion``   the version in production (what serving loads: ``models:/<name>@champion``)
* alias ``challenger`` a gated candidate waiting for a person (``promotion: challenger`` mode)
* tag ``champion_history`` JSON list of earlier champion versions (a stack; ``rollback`` pops it)
* each version carries tags: ``gate.*`` (the gate report), ``metric.*`` (its evaluation),
  ``data_hash``, ``eval_hash`` (evaluation set), ``bundle_hash``, ``previous_champion``,
  and the run holds the gate report as ``gate/gate_report.json``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from cmet.errors import CmetError

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "champion_history"


class RegistryError(CmetError):
    """Unknown model / version, or nothing to roll back to."""


def client(tracking_uri: str | None = None):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _exc():
    from mlflow.exceptions import MlflowException

    return MlflowException


def ensure_model(c, name: str) -> None:
    try:
        c.get_registered_model(name)
    except _exc():
        c.create_registered_model(
            name, description="C-MET connector (speech -> expression offsets); aliases champion/challenger"
        )


def alias_version(c, name: str, alias: str) -> str | None:
    try:
        return str(c.get_model_version_by_alias(name, alias).version)
    except _exc():
        return None


def _history(c, name: str) -> list[str]:
    try:
        tags = c.get_registered_model(name).tags or {}
    except _exc():
        return []
    try:
        return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]
    except json.JSONDecodeError:
        return []


def _check_version(c, name: str, version: str):
    try:
        return c.get_model_version(name, str(version))
    except _exc() as e:
        raise RegistryError(f"model {name!r} has no version {version!r}; see `cmet models`") from e


def find_version_by_tag(c, name: str, key: str, value: str) -> str | None:
    for mv in c.search_model_versions(f"name='{name}'"):
        if (mv.tags or {}).get(key) == value:
            return str(mv.version)
    return None


def register_candidate(
    c, name: str, source: str, run_id: str, tags: dict[str, str], dedupe_key: str | None = None
):
    """Register ``source`` (a model URI) as a new version with ``tags``; reuse the version already
    registered with the same ``bundle_hash`` (an unchanged re-run registers nothing new).

    Returns ``(version, is_new)``.
    """
    ensure_model(c, name)
    if dedupe_key:
        existing = find_version_by_tag(c, name, "bundle_hash", dedupe_key)
        if existing:
            return existing, False
    mv = c.create_model_version(name, source=source, run_id=run_id, tags={k: str(v) for k, v in tags.items()})
    return str(mv.version), True


def set_champion(c, name: str, version: str, reason: str) -> str | None:
    """Point ``champion`` at ``version``; push the previous champion on the history stack and into
    the new version's ``previous_champion`` tag. Returns the previous champion version (or None)."""
    _check_version(c, name, version)
    prev = alias_version(c, name, CHAMPION)
    if prev == str(version):
        return prev
    if prev is not None:
        hist = _history(c, name) + [prev]
        c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(hist[-50:]))
        c.set_model_version_tag(name, str(version), "previous_champion", prev)
    c.set_registered_model_alias(name, CHAMPION, str(version))
    c.set_model_version_tag(name, str(version), "promoted_by", reason)
    if alias_version(c, name, CHALLENGER) == str(version):
        c.delete_registered_model_alias(name, CHALLENGER)
    log.info("champion of %s: v%s -> v%s (%s)", name, prev, version, reason)
    return prev


def apply_gate(c, name: str, version: str, passed: bool, mode: str = "auto") -> dict:
    """Move aliases after a gate: pass + auto -> champion; pass + challenger -> challenger; fail -> nothing."""
    before = {CHAMPION: alias_version(c, name, CHAMPION), CHALLENGER: alias_version(c, name, CHALLENGER)}
    if not passed:
        c.set_model_version_tag(name, str(version), "decision", "rejected by gate")
        return {"action": "none (gate failed)", "before": before, "after": before}
    if mode == "challenger":
        c.set_registered_model_alias(name, CHALLENGER, str(version))
        c.set_model_version_tag(name, str(version), "decision", "challenger (awaiting `cmet promote`)")
        action = f"challenger -> v{version}"
    elif mode == "auto":
        if before[CHAMPION] == str(version):
            action = f"v{version} already champion"
        else:
            set_champion(c, name, version, "gate")
            c.set_model_version_tag(name, str(version), "decision", "champion (gate passed)")
            action = f"champion v{before[CHAMPION]} -> v{version}"
    else:
        raise RegistryError(f"unknown promotion mode {mode!r}; use auto or challenger")
    after = {CHAMPION: alias_version(c, name, CHAMPION), CHALLENGER: alias_version(c, name, CHALLENGER)}
    return {"action": action, "before": before, "after": after}


def promote(c, name: str, version: str) -> str | None:
    """A person's decision: make ``version`` the champion (whatever its gate said)."""
    return set_champion(c, name, str(version), "manual promote")


def rollback(c, name: str) -> tuple[str, str]:
    """Restore the previous champion (pop the history stack). Returns ``(from_version, to_version)``."""
    hist = _history(c, name)
    cur = alias_version(c, name, CHAMPION)
    while hist and hist[-1] == cur:
        hist.pop()
    if not hist:
        raise RegistryError(f"model {name!r} has no previous champion to roll back to (champion: {cur})")
    target = hist.pop()
    _check_version(c, name, target)
    c.set_registered_model_alias(name, CHAMPION, target)
    c.set_registered_model_tag(name, HISTORY_TAG, json.dumps(hist))
    if cur is not None:
        c.set_model_version_tag(name, cur, "rolled_back", "true")
    c.set_model_version_tag(name, target, "promoted_by", f"rollback from v{cur}")
    log.info("rollback of %s: champion v%s -> v%s", name, cur, target)
    return str(cur), target


@dataclass
class VersionRow:
    version: str
    aliases: list[str]
    gate: str
    acc: str
    created: int
    run_id: str


def list_versions(c, name: str) -> list[VersionRow]:
    try:
        mvs = c.search_model_versions(f"name='{name}'")
    except _exc():
        return []
    aliases: dict[str, list[str]] = {}
    for alias, v in (c.get_registered_model(name).aliases or {}).items():
        aliases.setdefault(str(v), []).append(alias)
    rows = []
    for mv in sorted(mvs, key=lambda m: int(m.version)):
        t = mv.tags or {}
        rows.append(
            VersionRow(
                str(mv.version),
                sorted(aliases.get(str(mv.version), [])),
                t.get("gate.passed", "?"),
                t.get("metric.acc_emo/cmet", "?"),
                int(mv.creation_timestamp or 0),
                mv.run_id or "",
            )
        )
    return rows
