"""A small student of emotion2vec+large: raw 16 kHz speech -> an estimate of its 1024-d utterance vector.

Input of the student: :func:`describe` = the prosody descriptor (:mod:`cmet.audio.prosody`, 94-d)
and log-mel statistics (64 bands: mean and standard deviation over frames, and of the frame-to-frame
difference; 256-d). Model: standardised input -> MLP (one hidden layer) -> 1024, trained on
(clip, the authors' emotion2vec+large vector) pairs with a cosine + scaled-MSE loss
(:func:`train_student`). ``cmet speech student RELEASE_DIR OUT`` reproduces a weights file.

Shipped (``audio=e2v_student`` and the raw-speech fallback of the precomputed encoder) only when its
weights file lies beside this module; :func:`shipped` says whether it does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmet.audio.encoders import SR, SpeechEncoder
from cmet.errors import ModelError

WEIGHTS = Path(__file__).resolve().parent / "student_e2v.safetensors"
N_MELS = 64
WIN, HOP = 400, 160  # 25 ms / 10 ms at 16 kHz


def shipped(dim: int = 1024) -> bool:
    """True when the student's weights ship with the package and predict ``dim``-d vectors."""
    if not WEIGHTS.is_file():
        return False
    from safetensors import safe_open

    with safe_open(str(WEIGHTS), "np") as f:
        return int((f.metadata() or {}).get("dim", 0)) == int(dim)


def _mel_matrix(n_fft: int = 512, n_mels: int = N_MELS, sr: int = SR) -> np.ndarray:
    """Triangular mel filters [n_mels, n_fft // 2 + 1] (HTK mel scale, 50 Hz .. sr/2)."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    edges = 700.0 * (10 ** (np.linspace(mel(50.0), mel(sr / 2), n_mels + 2) / 2595.0) - 1.0)
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up, down = (freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


def log_mel_stats(wave: np.ndarray) -> np.ndarray:
    """[S] 16 kHz -> [4 * N_MELS]: mean, std of log-mel frames and std, mean |.| of their differences."""
    x = np.asarray(wave, np.float32)
    if x.shape[0] < WIN + HOP:
        x = np.pad(x, (0, WIN + HOP - x.shape[0]))
    frames = np.lib.stride_tricks.sliding_window_view(x, WIN)[::HOP] * np.hanning(WIN).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, 512)) ** 2
    lm = np.log(power @ _mel_matrix().T + 1e-8)
    d = np.diff(lm, axis=0)
    return np.concatenate([lm.mean(0), lm.std(0), d.std(0), np.abs(d).mean(0)]).astype(np.float32)


def describe(wave: np.ndarray) -> np.ndarray:
    """The student's input of one clip: [94 + 256] (prosody descriptor, log-mel statistics)."""
    from cmet.audio import prosody

    return np.concatenate([prosody.describe(np.asarray(wave, np.float32)), log_mel_stats(wave)])


@dataclass
class StudentWeights:
    """Input standardisation (mu, sd [F]) and the MLP (w1 [F, H], b1 [H], w2 [H, D], b2 [D])."""

    mu: np.ndarray
    sd: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.w2.shape[1])

    def predict(self, feats: np.ndarray) -> np.ndarray:
        """[N, F] student inputs -> [N, D] estimated emotion2vec+large vectors."""
        z = (np.asarray(feats, np.float32) - self.mu) / self.sd
        h = np.maximum(0.0, z @ self.w1 + self.b1)
        return (h @ self.w2 + self.b2).astype(np.float32)

    def save(self, path: str | Path, meta: dict | None = None) -> Path:
        from safetensors.numpy import save_file

        arrays = {
            k: np.ascontiguousarray(getattr(self, k), np.float32)
            for k in ("mu", "sd", "w1", "b1", "w2", "b2")
        }
        save_file(
            arrays, str(path), metadata={"dim": str(self.dim), **{k: str(v) for k, v in (meta or {}).items()}}
        )
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> StudentWeights:
        from safetensors.numpy import load_file

        if not Path(path).is_file():
            raise ModelError(f"student encoder weights not found: {path}")
        a = load_file(str(path))
        return cls(*(a[k] for k in ("mu", "sd", "w1", "b1", "w2", "b2")))


def train_student(
    feats: np.ndarray, targets: np.ndarray, hidden: int = 256, steps: int = 1500, lr: float = 2e-3,
    weight_decay: float = 1e-3, seed: int = 0,
) -> StudentWeights:  # fmt: skip
    """Fit the MLP: [N, F] inputs -> [N, D] emotion2vec vectors; loss = 1 - cos + MSE / mean |y|^2."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = np.asarray(feats, np.float32)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mu) / sd)
    yt = torch.from_numpy(np.asarray(targets, np.float32))
    scale = float((yt**2).sum(1).mean())
    net = torch.nn.Sequential(torch.nn.Dropout(0.2), torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU())
    head = torch.nn.Linear(hidden, yt.shape[1])
    with torch.no_grad():
        for m in (net[1], head):
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.0 / m.weight.shape[1]) ** 0.5)
            m.bias.zero_()
        head.bias.copy_(yt.mean(0))
    params = [*net.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    torch.manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(0, xt.shape[0], (min(64, xt.shape[0]),), generator=g)
        pred = head(net(xt[idx]))
        loss = (1 - torch.nn.functional.cosine_similarity(pred, yt[idx]).mean()) + (
            (pred - yt[idx]) ** 2
        ).sum(1).mean() / scale
        opt.zero_grad()
        loss.backward()
        opt.step()
    lin = net[1]
    return StudentWeights(
        mu.astype(np.float32), sd.astype(np.float32),
        lin.weight.detach().numpy().T.copy(), lin.bias.detach().numpy().copy(),
        head.weight.detach().numpy().T.copy(), head.bias.detach().numpy().copy(),
    )  # fmt: skip


class StudentEncoder(SpeechEncoder):
    """``audio=e2v_student``: the shipped student (or ``audio.student_weights``) -> [N, 1024]."""

    def __init__(self, cfg=None) -> None:
        super().__init__(cfg)
        from cmet.audio import prosody

        self.weights = StudentWeights.load(self.cfg.get("student_weights") or WEIGHTS)
        self.dim = self.weights.dim
        self.name = "e2v-student"
        self.min_samples = prosody.MIN_SAMPLES

    def encode(self, waves: Sequence[np.ndarray]) -> np.ndarray:
        waves = self.check(waves)
        if not waves:
            return np.zeros((0, self.dim), np.float32)
        return self.weights.predict(np.stack([describe(w) for w in waves]))


def release_inputs(release_dir: str | Path) -> tuple[np.ndarray, np.ndarray, object]:
    """Student inputs [N, F] and targets [N, 1024] of the release's 452 clips, and their clip table
    (:mod:`cmet.data.vendor`: the vendored vectors are the targets, the audio is read from ``release_dir``)."""
    from cmet.audio.io import load_audio
    from cmet.data.vendor import load_vendored

    v = load_vendored()
    root = Path(release_dir)
    missing = [p for p in v.clips["audio_relpath"] if not (root / p).is_file()]
    if missing:
        raise ModelError(f"training the student needs the release audio: {root / missing[0]} is missing")
    x = np.stack([describe(load_audio(root / p, SR)[0]) for p in v.clips["audio_relpath"]])
    return x, v.speech, v.clips
