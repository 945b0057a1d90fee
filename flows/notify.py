"""Failure notification of the pipeline flow: a webhook (``pipeline.schedule.notify_url``) gets a JSON
POST when a run fails or crashes (Prefect ``on_failure`` / ``on_crashed`` hooks of the flow)."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

log = logging.getLogger(__name__)


def notify_url(parameters: dict) -> str | None:
    """The webhook of a flow run, from the config it ran on (its ``cfg_dict`` or its ``overrides``)."""
    cd = parameters.get("cfg_dict")
    if cd:
        return ((cd.get("pipeline") or {}).get("schedule") or {}).get("notify_url")
    from cmet.config import compose

    return compose(list(parameters.get("overrides") or [])).pipeline.schedule.notify_url


def payload(flow, flow_run, state) -> dict:
    return {
        "flow": flow.name,
        "flow_run_id": str(flow_run.id),
        "flow_run_name": flow_run.name,
        "deployment_id": str(flow_run.deployment_id) if flow_run.deployment_id else None,
        "state": state.type.value,
        "message": state.message,
        "overrides": list((flow_run.parameters or {}).get("overrides") or []),
    }


def notify_failure(flow, flow_run, state) -> None:
    """Prefect flow hook: POST :func:`payload` to the run's webhook, if one is configured. A webhook
    that does not answer is logged, never raised (the run's own failure is what matters)."""
    url = notify_url(flow_run.parameters or {})
    if not url:
        return
    body = json.dumps(payload(flow, flow_run, state)).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            log.info("failure of %s notified to %s (%s)", flow_run.name, url, r.status)
    except (urllib.error.URLError, OSError, ValueError) as e:
        log.warning("failure notification to %s failed: %s", url, e)
