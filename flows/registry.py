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
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cmet.errors import ModelError

log = logging.getLogger(__name__)
CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "champion_history"


class RegistryError(ModelError):
    """Unknown model / version / alias, or nothing to roll back to."""


def client(tracking_uri: str | None = None):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _exc():
    from mlflow.exceptions import MlflowException

    return MlflowException


def _missing(e) -> bool:
    """An MLflow error that means "no such registered model / version / alias" (not a broken store)."""
    return e.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")


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
    c,
    name: str,
    source: str,
    run_id: str,
    tags: dict[str, str],
    dedupe_key: str | None = None,
    model_id: str | None = None,
):
    """Register ``source`` (a model URI) as a new version with ``tags``, linked to the logged model
    ``model_id`` (MLflow 3: the model page shows the version); reuse the version already registered
    with the same ``bundle_hash`` (an unchanged re-run registers nothing new).

    Returns ``(version, is_new)``.
    """
    ensure_model(c, name)
    if dedupe_key:
        existing = find_version_by_tag(c, name, "bundle_hash", dedupe_key)
        if existing:
            return existing, False
    mv = c.create_model_version(
        name, source=source, run_id=run_id, tags={k: str(v) for k, v in tags.items()}, model_id=model_id
    )
    if model_id:  # what mlflow.register_model records: the logged model page lists its versions
        links = json.loads(c.get_logged_model(model_id).tags.get("mlflow.modelVersions", "[]"))
        links.append({"name": name, "version": mv.version})  # as mlflow.register_model writes it
        c.set_logged_model_tags(model_id, {"mlflow.modelVersions": json.dumps(links)})
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


def failed_gate(c, name: str, version: str) -> list[str]:
    """The gate checks ``version`` failed (``gate.<check>`` tags saying fail); ``["gate"]`` when only
    ``gate.passed=false`` is recorded; ``[]`` when it passed or carries no gate report."""
    tags = _check_version(c, name, version).tags or {}
    if tags.get("gate.passed") != "false":
        return []
    failed = [
        f"{k[len('gate.') :]} {v}"
        for k, v in sorted(tags.items())
        if k.startswith("gate.") and v.startswith("fail")
    ]
    return failed or ["gate"]


def promote(c, name: str, version: str, force: bool = False) -> dict:
    """A person's decision: make ``version`` the champion. A version that failed its gate needs
    ``force``; the override is recorded on the version (``promoted_over_gate``, ``decision``).

    Returns ``{"previous": old champion or None, "overridden": [failed checks]}``."""
    version = str(version)
    failed = failed_gate(c, name, version)
    if failed and not force:
        raise RegistryError(
            f"{name} v{version} failed its promotion gate ({'; '.join(failed)}); it stays registered but "
            f"not champion. `cmet promote {version} --force` overrides the gate"
        )
    prev = set_champion(c, name, version, "manual promote" + (" over a failed gate" if failed else ""))
    if failed:
        c.set_model_version_tag(name, version, "promoted_over_gate", "; ".join(failed))
        c.set_model_version_tag(name, version, "decision", "champion by manual promote (gate overridden)")
    else:
        c.set_model_version_tag(name, version, "decision", "champion by manual promote")
    return {"previous": prev, "overridden": failed}


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


# ------------------------------------------------------------------------------ bundles from the registry
def find_bundle(folder: str | Path) -> Path:
    """The ModelBundle folder (the one holding bundle.json) at or under ``folder``."""
    folder = Path(folder)
    if (folder / "bundle.json").is_file():
        return folder
    hits = sorted(folder.rglob("bundle.json"), key=lambda p: len(p.parts)) if folder.is_dir() else []
    if not hits:
        raise ModelError(f"no model bundle (bundle.json) under {folder}")
    return hits[0].parent


def resolve_version(c, name: str, ref: str | int):
    """``ref`` = an alias (``champion``) or a version number -> the MLflow ModelVersion.

    Raises :class:`RegistryError` naming the model and the ref when the registry has neither."""
    ref = str(ref)
    try:
        return c.get_model_version(name, ref) if ref.isdigit() else c.get_model_version_by_alias(name, ref)
    except _exc() as e:
        if not _missing(e):
            raise
        kind = "version" if ref.isdigit() else "alias"
        raise RegistryError(
            f"model {name!r} has no {kind} {ref!r}: not in the registry at {c.tracking_uri}; "
            "run the pipeline first (make run) or see `cmet models`"
        ) from None


def fetch_bundle(name: str, ref: str | int, dst: str | Path, c=None) -> Path:
    """Download the bundle of ``models:/<name>/<version of ref>`` into ``dst`` once -> the folder
    holding bundle.json. ``ref`` is an alias (``champion``) or a version number. A second call with a
    complete ``dst`` downloads nothing; a failed download leaves no half-filled ``dst``."""
    import mlflow

    dst = Path(dst)
    if dst.is_dir() and any(dst.rglob("bundle.json")):
        return find_bundle(dst)
    c = c or client()
    mv = resolve_version(c, name, ref)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}-", dir=dst.parent))
    try:
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{mv.version}",
            dst_path=str(tmp),
            tracking_uri=c.tracking_uri,
            registry_uri=c.tracking_uri,
        )
        find_bundle(tmp)  # ModelError when the registered model holds no bundle
        if dst.exists():
            shutil.rmtree(dst)
        tmp.rename(dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return find_bundle(dst)


def champion_version_sqlite(uri: str, name: str) -> int | None:
    """The version the champion alias of ``name`` points at, read straight from a local SQLite
    MLflow store (``sqlite:///...``, opened read-only) without importing MLflow (~2 s of every
    ``cmet edit``); None when the store is not local SQLite, has no such alias, or cannot be read
    (the caller then asks MLflow)."""
    import sqlite3

    if not uri.startswith("sqlite:///"):
        return None
    db = Path(uri[len("sqlite:///") :])
    if not db.is_file():
        return None
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2.0)
        try:
            row = con.execute(
                "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", (name, CHAMPION)
            ).fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    try:
        return int(row[0]) if row else None
    except (TypeError, ValueError):
        return None


def default_bundle_dir(cfg) -> Path:
    """The bundle an edit uses when none is named (:func:`default_bundle`)."""
    return default_bundle(cfg)[0]


def default_bundle(cfg) -> tuple[Path, dict | None]:
    """The bundle an edit uses when none is named: the registry's champion (downloaded once into
    ``<work>/models/champion-v<N>``), else the newest bundle under ``<work>/runs`` or ``<work>/models``,
    else :class:`~cmet.errors.ModelError` saying how to get one -> (its folder, its registry identity
    ``{"model", "version", "alias"}`` when it is the champion, else None).

    With a local SQLite store whose champion is already downloaded, the alias is read from the store
    directly (:func:`champion_version_sqlite`) and MLflow is not imported; anything else asks MLflow."""
    from cmet.env import configure_local_env

    configure_local_env()  # the project's MLflow store, also for a library caller (no ./mlflow.db)
    work = Path(str(cfg.paths.work_dir))
    name = str(cfg.pipeline.registered_model)
    uri = str(cfg.pipeline.tracking_uri) if cfg.pipeline.tracking_uri else None
    v = champion_version_sqlite(uri or os.environ.get("MLFLOW_TRACKING_URI", ""), name)
    if v is not None:  # the champion already downloaded: no MLflow import
        here = work / "models" / f"champion-v{v}"
        if here.is_dir() and any(here.rglob("bundle.json")):
            return find_bundle(here), {"model": name, "version": str(v), "alias": CHAMPION}
    c = client(uri)
    try:
        mv = c.get_model_version_by_alias(name, CHAMPION)
    except _exc() as e:
        if not _missing(e):
            raise
        mv = None
    if mv is not None:
        folder = fetch_bundle(name, str(mv.version), work / "models" / f"champion-v{mv.version}", c)
        return folder, {"model": name, "version": str(mv.version), "alias": CHAMPION}
    hits = [p for d in ("runs", "models") for p in (work / d).rglob("bundle.json")] if work.is_dir() else []
    if not hits:
        raise ModelError(
            f"no trained model found (no {CHAMPION!r} of {name!r} in the registry, no bundle under {work}); "
            "train one (make run, or cmet train data=release_au) or pass --model BUNDLE_DIR"
        )
    return max(hits, key=lambda p: p.stat().st_mtime).parent, None
