"""Redeploy the champion after ``cmet promote`` / ``cmet rollback`` (``cmet redeploy``).

1. build the bento of ``models:/<name>@champion`` (:func:`serving.build.build_bento`);
2. restart the served model with ``pipeline.redeploy.restart`` (a shell command, e.g.
   ``systemctl --user restart cmet-serve`` for the unit in ``flows/deploy/``, or
   ``docker compose up -d --force-recreate cmet``); ``$CMET_BENTO`` holds the new bento tag;
3. ask the service at ``pipeline.redeploy.url`` (``POST /version``) until it reports the champion's
   version. No service answering is fine (the next ``cmet bento serve`` serves the new bento); one still
   serving another version after the restart (or with no restart command) is an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

from cmet.errors import ModelError


def served_version(url: str, timeout: float = 5.0) -> str | None:
    """The model version a running service reports (``POST <url>/version``), None when none answers."""
    req = urllib.request.Request(f"{url.rstrip('/')}/version", data=b"{}", method="POST")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return str(json.loads(r.read()).get("version"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def redeploy(cfg, restart: str | None = None, url: str | None = None, wait_s: float | None = None) -> dict:
    """Build the champion's bento, restart the service, check it serves the champion (module doc).

    Returns ``{"version", "bento", "restarted", "served"}``; raises ModelError when a service answers
    with another version."""
    from flows import registry as R
    from serving.build import build_bento

    rd = cfg.pipeline.redeploy
    restart = restart if restart is not None else rd.restart
    url = url or rd.url
    wait_s = float(rd.wait_s if wait_s is None else wait_s)
    name = str(cfg.pipeline.registered_model)
    version = R.resolve_version(R.client(cfg.pipeline.tracking_uri or None), name, R.CHAMPION).version
    tag = build_bento(f"models:/{name}@{R.CHAMPION}", cfg)
    if restart:
        subprocess.run(
            str(restart), shell=True, check=True, env=dict(os.environ, CMET_BENTO=tag), timeout=600
        )
    served = served_version(url) if url else None
    deadline = time.monotonic() + wait_s
    while restart and url and served != str(version) and time.monotonic() < deadline:
        time.sleep(1.0)
        served = served_version(url)
    if served is not None and served != str(version):
        how = f"after `{restart}`" if restart else "and pipeline.redeploy.restart is not set"
        raise ModelError(
            f"built {tag} for {name} v{version}, but the service at {url} still serves v{served} {how}; "
            "restart `cmet bento serve` (or set pipeline.redeploy.restart)"
        )
    return {"version": str(version), "bento": tag, "restarted": bool(restart), "served": served}
