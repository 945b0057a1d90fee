"""Scheduled retraining with a Prefect server that really schedules (``cmet schedule``).

Prefect's temporary (ephemeral) server runs no scheduler: a cron deployment served against it never
fires. :func:`serve_schedule` therefore uses the Prefect API named by ``PREFECT_API_URL``, else one
already answering on ``127.0.0.1:<pipeline.schedule.server_port>`` (``make ui`` starts it), else it
starts ``prefect server start`` itself (its own process group, stores in PREFECT_HOME under .cmet/).
It then serves the pipeline's cron deployment from a Prefect ``Runner`` (``pipeline.schedule.concurrency``
runs at a time, also as the deployment's concurrency limit) until SIGINT or SIGTERM: the runner stops
first, then the server it started, and the command returns 0. A server that dies stops the runner
(exit 1) instead of leaving it to loop on connection errors.

The production path (a long-lived server, a work pool and a worker) is in ``flows/README.md`` and
``flows/deploy/``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cmet.errors import ConfigError

FLOW_ENTRY = "flows/pipeline.py:cmet_pipeline"


def merge_overrides(*groups) -> list[str]:
    """Hydra overrides of several sources, later ones replacing earlier ones of the same key
    (``experiment=daily`` then ``experiment=fast`` -> ``experiment=fast``)."""
    merged: dict[str, str] = {}
    for group in groups:
        for ov in group or []:
            key = str(ov).split("=", 1)[0].lstrip("+~")
            merged.pop(key, None)
            merged[key] = str(ov)
    return list(merged.values())


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect API answers its health check at ``api_url`` (``http://host:port/api``)."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class LocalServer:
    """A ``prefect server start`` process this command started (None when it uses another one)."""

    api_url: str
    proc: subprocess.Popen | None = None

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def ensure_server(port: int, startup_timeout: float = 240.0, log_path: Path | None = None) -> LocalServer:
    """The Prefect API to schedule against: ``PREFECT_API_URL``, or a server on ``port``, or a new one."""
    url = os.environ.get("PREFECT_API_URL")
    if url:
        if not healthy(url, timeout=10):
            raise ConfigError(
                f"PREFECT_API_URL={url} does not answer; start that server or unset the variable"
            )
        return LocalServer(url)
    url = f"http://127.0.0.1:{port}/api"
    if healthy(url):
        return LocalServer(url)
    prefect = str(Path(sys.executable).with_name("prefect"))
    env = dict(os.environ, PREFECT_SERVER_ANALYTICS_ENABLED="false")
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 (lives with the server)
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C in the terminal reaches this command only; it stops the server last
    )
    server = LocalServer(url, proc)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ConfigError(
                f"prefect server on port {port} exited with {proc.returncode} (port busy?); see {log_path}"
            )
        if healthy(url):
            return server
        time.sleep(1.0)
    server.stop()
    raise ConfigError(f"prefect server on port {port} did not answer within {startup_timeout:.0f} s")


def deployment(cfg, cron: str, overrides: list[str]):
    """The cron deployment of the pipeline flow: scheduled runs get ``pipeline.schedule.overrides``
    (``experiment=daily``) merged with ``overrides``; at most ``pipeline.schedule.concurrency`` at a time."""
    from flows.pipeline import cmet_pipeline

    sc = cfg.pipeline.schedule
    params = {"overrides": merge_overrides(sc.overrides, overrides)}
    return cmet_pipeline.to_deployment(
        name=str(sc.deployment),
        cron=str(cron),
        parameters=params,
        tags=["cmet", "retrain"],
        description="scheduled retraining of the C-MET connector",
        concurrency_limit=int(sc.concurrency),
    )


def deploy_to_pool(cfg, pool: str, cron: str | None = None, overrides: list[str] | None = None) -> str:
    """Register the cron deployment on work pool ``pool`` (created as a ``process`` pool if absent) for
    a long-lived ``prefect worker start --pool POOL`` to run; the flow code is read from this checkout.
    Needs ``PREFECT_API_URL`` (a server with its scheduler). Returns the deployment id."""
    from prefect import flow as prefect_flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError("cmet schedule --pool needs PREFECT_API_URL (the Prefect server the worker polls)")
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
        except ObjectAlreadyExists:
            pass
    sc = cfg.pipeline.schedule
    root = Path(__file__).resolve().parent.parent
    source = prefect_flow.from_source(source=str(root), entrypoint=FLOW_ENTRY)
    return str(
        source.deploy(
            name=str(sc.deployment),
            work_pool_name=pool,
            cron=str(cron or sc.cron),
            parameters={"overrides": merge_overrides(sc.overrides, overrides)},
            tags=["cmet", "retrain"],
            description="scheduled retraining of the C-MET connector",
            concurrency_limit=int(sc.concurrency),
            print_next_steps=False,
        )
    )


async def _run_until_signal(runner, server: LocalServer) -> int:
    """Start ``runner``; stop it on SIGINT/SIGTERM (-> 0) or when our server dies (-> 1)."""
    import asyncio

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.start())
    while not runner.started and not task.done():
        await asyncio.sleep(0.1)
    # installed after runner.start(), which sets its own SIGTERM handler (sys.exit inside the loop)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    code = 0
    while not stop.is_set() and not task.done():
        if server.proc is not None and server.proc.poll() is not None:
            print(f"the Prefect server exited ({server.proc.returncode}); stopping", file=sys.stderr)
            code = 1
            break
        try:
            await asyncio.wait_for(stop.wait(), timeout=2.0)
        except TimeoutError:
            pass
    if runner.started:
        await runner.astop()
    await asyncio.gather(task, return_exceptions=True)
    return code


def serve_schedule(cfg, cron: str | None = None, overrides: list[str] | None = None) -> int:
    """Serve the cron deployment until SIGINT/SIGTERM (see the module doc). Returns the exit code."""
    import asyncio

    sc = cfg.pipeline.schedule
    log_path = Path(str(cfg.paths.work_dir)) / "prefect" / "server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    server = ensure_server(int(sc.server_port), log_path=log_path)
    os.environ["PREFECT_API_URL"] = server.api_url  # before Prefect is imported
    try:
        from prefect.runner import Runner

        dep = deployment(cfg, cron or str(sc.cron), list(overrides or []))
        runner = Runner(name=f"cmet-{sc.deployment}", limit=int(sc.concurrency), pause_on_shutdown=False)
        runner.add_deployment(dep)
        print(
            f"serving {dep.name!r} of flow cmet-pipeline, cron {cron or sc.cron!r} (UTC), parameters "
            f"{dep.parameters}, at most {sc.concurrency} at a time; API {server.api_url}"
            f"{' (started here, log ' + str(log_path) + ')' if server.proc else ''}; Ctrl-C or SIGTERM stops",
            flush=True,
        )
        return asyncio.run(_run_until_signal(runner, server))
    finally:
        server.stop()
