"""Section ``service``: p50/p95 latency and throughput of the served model under 1/4/16 clients.

Calls the serving issue's load run (:func:`serving.loadtest.run_loadtest`): it serves the W009 fold's
bundle (``model_dir``) on a free loopback port, sends a bounded number of requests per level to
``expressions`` and ``edit`` (a 1 s cut of the real video), and stops the server by its PID.
"""

from __future__ import annotations

from bench.common import hardware, load_average, md_table
from bench.context import VIDEO_SPEAKER, Ctx, Section, trained_runs

NAME = "service"
TITLE = "Service load (BentoML on loopback)"


def run(ctx: Ctx) -> Section:
    from serving.loadtest import run_loadtest

    rel = ctx.need_release()
    s = ctx.s
    runs = trained_runs(ctx, ("full",))
    key = (VIDEO_SPEAKER, "full") if (VIDEO_SPEAKER, "full") in runs else next(iter(runs))
    la0 = load_average()
    res = run_loadtest(
        None,
        clients=tuple(s["service_clients"]),
        requests_per_client=int(s["service_requests"]),
        model_dir=runs[key]["bundle_dir"],
        release_dir=rel,
        clip_seconds=1.0,
        max_seconds_per_level=60.0 if ctx.quick else 120.0,
        workdir=str(ctx.work),
    )
    res["hardware"], res["load_average_start"], res["load_average_end"] = hardware(), la0, load_average()

    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    rows = [
        [
            lv.get("endpoint"),
            lv.get("clients"),
            lv.get("requests"),
            f(lv.get("p50_s")),
            f(lv.get("p95_s")),
            f"{lv.get('throughput_rps', 0):.2f}",
            lv.get("failed"),
        ]
        for lv in res["levels"]
    ]
    t = md_table(["endpoint", "clients", "requests", "p50 s", "p95 s", "req/s", "failed"], rows)
    clip = res.get("clip", {})
    md = f"""## {TITLE}

Measured on: {res["hardware"]}; {la0} at the start, {res["load_average_end"]} at the end. The service
(serving/, BentoML 1.4) serving the {key[0]} fold's `cmet_small` bundle, one process on loopback;
clip: {clip.get("source")} {clip.get("seconds")} s, {clip.get("frames")} frames {clip.get("size")};
{res["requests_per_client"]} request(s) per client per level after one warm-up request per endpoint.

{t}

Failed requests in total: {res["failed_total"]}. Reproduce: {ctx.reproduce(NAME)}
(or `cmet bento loadtest --model-dir BUNDLE`).
"""
    return Section(NAME, TITLE, md, res)
