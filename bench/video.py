"""Section ``video``: the user's own footage -- edit time and peak memory by resolution and length,
faces, batch throughput on Dask.

* Clips made from the real MEAD sample (``W009_038.mp4``, 7 s, 256x256, speech): looped to 7 s, 60 s
  and 600 s, scaled to 60 % of the frame height and padded to 256x256 / 1280x720 / 1920x1080
  (H.264 yuv420p, AAC). Without ../shared the synthetic talking face of :mod:`serving.sample`.
* Each edit (:func:`cmet.edit.edit_video`, target happy, the trained face-space bundle folder, as
  ``cmet edit`` calls it) runs in a fresh interpreter: wall time (imports and model load included),
  real-time factor = video seconds / wall seconds, the interpreter's peak RSS (``VmHWM``) and the
  sampled peak RSS of its whole process tree (the ffmpeg decoders and encoder included). Longest
  clips last; a run past ``timeout_s`` is reported as such.
* Two faces (the sample twice, different sizes, in 1280x720): default edit vs ``face=all``, the report.
* A batch of 20 short clips (:mod:`flows.batch`) on a Dask LocalCluster of 2 workers vs 1 worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import hardware, load_average, md_table
from bench.context import ROOT, Ctx, Section, Skip

NAME = "video"
TITLE = "Your own footage: resolution, length, faces, batch"
SIZES = ((256, 256), (1280, 720), (1920, 1080))
LENGTHS = (7.0, 60.0, 600.0)
TARGETS = {"rtf_1080p": 1.0, "peak_rss_mb": 1536.0}
CHILD = """
import json, sys, time
t0 = time.perf_counter()
from cmet.config import compose
from cmet.edit import edit_video
r = edit_video(sys.argv[1], "happy", bundle=sys.argv[2], cfg=compose([]), out=sys.argv[3], face=sys.argv[4],
               threads=1)
wall = time.perf_counter() - t0
hwm = [int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")][0] / 1024
print(json.dumps({"wall_s": wall, "vmhwm_mb": hwm, "n_frames": r.n_frames, "fps": r.fps,
                  "timings": r.timings, "report": r.report}))
"""


def face_bundle() -> Path:
    """The newest trained bundle in the 19-d face space under .cmet/ (``make run``)."""
    from cmet.face.facs import D_EXPR

    found = []
    for p in (ROOT / ".cmet").glob("**/bundle.json"):
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if int(d.get("d_expr", d.get("dims", {}).get("d_expr", -1))) == D_EXPR:
            found.append(p)
    if not found:
        raise Skip("no trained face-space bundle under .cmet/ (make run)")
    return max(found, key=lambda p: p.stat().st_mtime).parent


def source_clip(ctx: Ctx, work: Path) -> Path:
    """The 7 s real sample, or a synthetic talking face without ../shared."""
    if ctx.release is not None and (ctx.release / "asset/video/W009_038.mp4").is_file():
        return ctx.release / "asset/video/W009_038.mp4"
    from serving.sample import synthetic_face_video

    return synthetic_face_video(work / "synthetic.mp4", seconds=7.0, size=256)


def make_clip(src: Path, w: int, h: int, seconds: float, dst: Path) -> Path:
    """``src`` looped to ``seconds``, scaled to 60 % of ``h`` (256 px: as is) and centred on a ``w x h``
    frame; H.264 yuv420p + AAC (made once, kept in the work folder)."""
    from cmet.media import ffmpeg_exe

    if dst.is_file():
        return dst
    vf = (
        "scale=256:256"
        if h <= 256
        else f"scale=-2:{int(h * 0.6) // 2 * 2},pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:0x506070"
    )
    tmp = dst.with_name("tmp_" + dst.name)
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", "-1", "-i", str(src), "-t", f"{seconds}"]
    cmd += ["-vf", vf, "-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "23"]
    cmd += ["-c:a", "aac", "-b:a", "64k", str(tmp)]
    subprocess.run(cmd, check=True, capture_output=True)
    tmp.replace(dst)
    return dst


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and all its descendants (MiB)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for t in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (t / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total / 1024


def edit_in_child(
    video: Path, bundle: Path, out: Path, face: str = "largest", timeout_s: float = 3600
) -> dict:
    """One edit in a fresh interpreter -> its JSON line + the sampled peak RSS of its process tree."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(video), str(bundle), str(out), face],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    t0, peak = time.perf_counter(), 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        if time.perf_counter() - t0 > timeout_s:
            proc.kill()
            proc.wait()
            return {"timed_out": True, "after_s": round(time.perf_counter() - t0, 1), "tree_peak_mb": peak}
        time.sleep(0.25)
    out_s, err = proc.communicate()
    if proc.returncode != 0:
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"}
    res = json.loads(out_s.strip().splitlines()[-1])
    res["tree_peak_mb"] = peak
    return res


def scaling(src: Path, bundle: Path, work: Path, lengths, timeout_s: float) -> list[dict]:
    """Every size x length (the longest last) -> one row each."""
    rows = []
    for seconds in lengths:
        for w, h in SIZES:
            clip = make_clip(src, w, h, seconds, work / f"clip_{w}x{h}_{int(seconds)}s.mp4")
            t = time.perf_counter()
            r = edit_in_child(clip, bundle, work / f"out_{w}x{h}_{int(seconds)}s.mp4", timeout_s=timeout_s)
            r.update(w=w, h=h, seconds=seconds, measured_at=time.strftime("%H:%M:%S"))
            if "wall_s" in r:
                r["rtf"] = seconds / r["wall_s"]
                r["rtf_without_model_load"] = seconds / (r["wall_s"] - r["timings"].get("load_model", 0.0))
            r["section_wall_s"] = time.perf_counter() - t
            print(json.dumps({k: v for k, v in r.items() if k != "report"}), flush=True)
            rows.append(r)
    return rows


def two_faces(src: Path, bundle: Path, work: Path) -> dict:
    """The sample twice in a 1280x720 frame (432 and 216 px tall) -> default edit and face=all."""
    from cmet.media import ffmpeg_exe

    clip = work / "two_faces.mp4"
    if not clip.is_file():
        fc = (
            "[0:v]split[a][b];[a]scale=432:432[big];[b]scale=216:216[small];"
            "color=c=0x506070:s=1280x720:d=7[bg];[bg][big]overlay=100:140[t];[t][small]overlay=900:250"
        )
        cmd = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-filter_complex", fc, "-t", "7"]
        cmd += ["-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(clip)]
        subprocess.run(cmd, check=True, capture_output=True)
    out = {}
    for face in ("largest", "all"):
        r = edit_in_child(clip, bundle, work / f"two_faces_{face}.mp4", face=face)
        out[face] = {
            "faces_found": r["report"]["faces_found"],
            "faces_edited": [f["face"] for f in r["report"]["faces_edited"]],
            "warnings": r["report"]["warnings"],
            "wall_s": r["wall_s"],
        }
    return out


def batch(src: Path, bundle: Path, work: Path, n: int = 20) -> dict:
    """``n`` 2-s 256x256 clips on a LocalCluster of 2 workers, then of 1 (fresh outputs each)."""
    import shutil

    from flows.batch import run_batch

    res = {}
    clips = [make_clip(src, 256, 256, 2.0, work / "batch_src.mp4")]
    for workers in (2, 1):
        d = work / f"batch_{workers}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        rows = ["video,target,intensity,out"] + [f"{clips[0]},happy,1.0,out/{i}.mp4" for i in range(n)]
        (d / "m.csv").write_text("\n".join(rows) + "\n")
        t = time.perf_counter()
        s = run_batch(d / "m.csv", bundle, workers=workers)
        wall = time.perf_counter() - t
        res[workers] = {
            "wall_s": wall,
            "flow_s": s["seconds"],
            "done": s["done"],
            "failed": s["failed"],
            "clips_per_min": 60 * s["done"] / wall,
        }
    res["speedup"] = res[1]["wall_s"] / res[2]["wall_s"]
    return res


def run(ctx: Ctx) -> Section:
    work = ctx.work / "video"
    work.mkdir(parents=True, exist_ok=True)
    bundle = face_bundle()
    src = source_clip(ctx, work)
    lengths = (
        (7.0,)
        if ctx.quick
        else tuple(float(x) for x in os.environ.get("CMET_BENCH_VIDEO_S", "7,60,600").split(","))
    )
    timeout_s = float(os.environ.get("CMET_BENCH_VIDEO_TIMEOUT_S", "1800"))
    data = {"hardware": hardware(), "load_average_start": load_average(), "bundle": str(bundle)}
    data["two_faces"] = two_faces(src, bundle, work)
    data["batch"] = batch(src, bundle, work, n=4 if ctx.quick else 20)
    data["scaling"] = scaling(src, bundle, work, lengths, timeout_s)
    job_clip = make_clip(src, 1920, 1080, 60.0, work / "clip_1920x1080_60s.mp4")
    data["service_job"] = service_job(job_clip, bundle, work)
    data["load_average_end"] = load_average()
    return Section(NAME, TITLE, markdown(data), data)


def markdown(data: dict) -> str:
    rows = []
    for r in data["scaling"]:
        if "wall_s" not in r:
            why = f"timed out after {r['after_s']:.0f} s" if r.get("timed_out") else r.get("error", "?")
            peak = f"{r['tree_peak_mb']:.0f}" if "tree_peak_mb" in r else ""
            rows.append([f"{r['w']}x{r['h']}", f"{r['seconds']:.0f}", why, "", "", "", peak])
            continue
        edit_s = r["timings"]["total"]
        rows.append([f"{r['w']}x{r['h']}", f"{r['seconds']:.0f}", f"{r['wall_s']:.1f}", f"{edit_s:.1f}",
                     f"{r['seconds'] / edit_s:.2f}", f"{r['vmhwm_mb']:.0f}", f"{r['tree_peak_mb']:.0f}"])  # fmt: skip
    tf, b = data["two_faces"], data["batch"]
    lines = [
        f"## {TITLE}",
        "",
        f"{data['hardware']}; {data['load_average_start']} at the start, {data['load_average_end']} at the end "
        "(other sessions share the 2 cores: timings are upper bounds).",
        "",
        md_table(
            [
                "size",
                "video s",
                "wall s (fresh interpreter)",
                "edit_video s",
                "x real time (edit)",
                "peak RSS MB (python)",
                "peak RSS MB (tree)",
            ],  # fmt: skip
            rows,
        ),
        "",
        f"Targets: 1920x1080 at 25 fps >= {TARGETS['rtf_1080p']}x real time; peak RSS <= {TARGETS['peak_rss_mb']:.0f} MB "
        "at every length.",
        "",
        "Two faces (1280x720): default edits faces "
        f"{tf['largest']['faces_edited']} of {len(tf['largest']['faces_found'])} found (warning: "
        f"{'; '.join(tf['largest']['warnings'])}); face=all edits {tf['all']['faces_edited']}.",
        "",
        f"Batch of {b[2]['done'] + b[2]['failed']} clips (2 s, 256x256) on a Dask LocalCluster: 2 workers "
        f"{b[2]['wall_s']:.1f} s ({b[2]['clips_per_min']:.1f} clips/min), 1 worker {b[1]['wall_s']:.1f} s "
        f"({b[1]['clips_per_min']:.1f} clips/min): speed-up {b['speedup']:.2f}x.",
        "",
        f"Service: a 60 s 1920x1080 job ({data['service_job'].get('upload_mb', 0):.1f} MB upload): "
        f"{data['service_job'].get('status')} in {data['service_job'].get('wall_s', 0):.0f} s, server process "
        f"tree peak RSS {data['service_job'].get('server_tree_peak_mb', 0):.0f} MB (target <= 2048 MB).",
    ]
    return "\n".join(lines)


def service_job(clip: Path, bundle: Path, work: Path, timeout_s: float = 1800) -> dict:
    """``clip`` as a job of the served model (``serving.service:CmetService`` on loopback): submit,
    poll, fetch; the server's process-tree RSS sampled throughout (its peak is the figure)."""
    import requests

    from cmet.media import probe_video
    from serving.server import ServedBento

    srv = ServedBento("serving.service:CmetService", model_dir=bundle).start()
    peak, t0 = _tree_rss_mb(srv.pid), time.perf_counter()
    try:
        with clip.open("rb") as fh:
            r = requests.post(
                f"{srv.url}/edit_job/submit",
                files={"video": (clip.name, fh, "video/mp4")},
                data={"emotion": "happy"},
                timeout=600,
            )
        if r.status_code != 200:
            return {"error": f"submit {r.status_code}: {r.text[:300]}"}
        task = r.json()["task_id"]
        status = "in_progress"
        while status == "in_progress" and time.perf_counter() - t0 < timeout_s:
            time.sleep(1.0)
            peak = max(peak, _tree_rss_mb(srv.pid))
            status = requests.get(f"{srv.url}/edit_job/status", params={"task_id": task}, timeout=30).json()
            status = status.get("status", "?")
        wall = time.perf_counter() - t0
        res = {
            "status": status,
            "wall_s": wall,
            "server_tree_peak_mb": peak,
            "upload_mb": clip.stat().st_size / 2**20,
        }
        if status == "completed":
            out = work / "service_job_out.mp4"
            got = requests.get(f"{srv.url}/edit_job/get", params={"task_id": task}, timeout=600)
            out.write_bytes(got.content)
            info = probe_video(out)
            res.update(out_frames=info.n_frames, out_size=[info.w, info.h])
        return res
    finally:
        srv.stop()
