"""Signal primitives of the prosody descriptor (:mod:`cmet.audio.prosody`): framing, HTK-mel
filters, YIN pitch (de Cheveigne & Kawahara 2002, 60-500 Hz), Levinson-Durbin LPC and LPC formants.
16 kHz mono, 25 ms windows every 10 ms."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SR = 16_000
WIN = 400  # 25 ms
HOP = 160  # 10 ms
NFFT = 512
N_MELS = 40
F0_MIN, F0_MAX = 60.0, 500.0
PITCH_WIN = 640  # 40 ms for YIN (two periods of 60 Hz ~ 33 ms)


def frame(x: np.ndarray, win: int, hop: int) -> np.ndarray:
    """[S] -> [n_frames, win] (zero-padded at the end, a view where possible)."""
    if x.shape[0] < win:
        x = np.pad(x, (0, win - x.shape[0]))
    n = 1 + (x.shape[0] - win) // hop
    return np.lib.stride_tricks.sliding_window_view(x, win)[::hop][:n]


@lru_cache(maxsize=4)
def mel_filterbank(
    n_mels: int = N_MELS, nfft: int = NFFT, sr: int = SR, fmin: float = 50.0, fmax: float = 7600.0
) -> np.ndarray:
    """HTK-mel triangular filters: [n_mels, nfft // 2 + 1]."""

    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel2hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    freqs = np.linspace(0, sr / 2, nfft // 2 + 1)
    pts = mel2hz(np.linspace(hz2mel(fmin), hz2mel(fmax), n_mels + 2))
    fb = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        fb[i] = np.clip(np.minimum((freqs - lo) / (c - lo), (hi - freqs) / (hi - c)), 0, None)
    return fb


def yin_pitch(
    x: np.ndarray, sr: int = SR, hop: int = HOP, win: int = PITCH_WIN, threshold: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """YIN F0 per frame: ([n] f0 in Hz, 0 where unvoiced; [n] aperiodicity = CMNDF minimum in [0, 1+])."""
    frames = frame(x, win, hop).astype(np.float64)
    frames = frames - frames.mean(axis=1, keepdims=True)
    n = frames.shape[0]
    tau_min, tau_max = int(sr / F0_MAX), int(sr / F0_MIN)
    # difference function via autocorrelation: d(tau) = e0 + e_tau - 2 r(tau), window of size win - tau_max
    w = win - tau_max
    spec = np.fft.rfft(frames, n=2 * win, axis=1)
    seg = np.zeros_like(frames)
    seg[:, :w] = frames[:, :w]
    r = np.fft.irfft(np.fft.rfft(seg, n=2 * win, axis=1).conj() * spec, axis=1)[:, : tau_max + 1]
    sq = np.cumsum(np.pad(frames**2, ((0, 0), (1, 0))), axis=1)
    e0 = sq[:, w][:, None]
    taus = np.arange(tau_max + 1)
    e_tau = sq[:, taus + w] - sq[:, taus]
    d = np.maximum(e0 + e_tau - 2 * r, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    cmndf = np.ones_like(d)
    cmndf[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, 1e-12)
    sub = cmndf[:, tau_min : tau_max + 1]
    below = sub < threshold
    # first local dip under the threshold, else the global minimum
    first = np.where(below.any(axis=1), below.argmax(axis=1), sub.argmin(axis=1))
    idx = first.copy()
    for _ in range(3):  # walk down to the local minimum after the first crossing
        nxt = np.minimum(idx + 1, sub.shape[1] - 1)
        go = sub[np.arange(n), nxt] < sub[np.arange(n), idx]
        idx = np.where(go, nxt, idx)
    ap = sub[np.arange(n), idx]
    # parabolic interpolation
    i0 = np.clip(idx - 1, 0, sub.shape[1] - 1)
    i2 = np.clip(idx + 1, 0, sub.shape[1] - 1)
    a, b, c = sub[np.arange(n), i0], ap, sub[np.arange(n), i2]
    den = a - 2 * b + c
    shift = np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / np.where(np.abs(den) > 1e-12, den, 1), 0.0)
    tau = idx + tau_min + np.clip(shift, -1, 1)
    f0 = sr / np.maximum(tau, 1)
    voiced = ap < 0.35
    return np.where(voiced, f0, 0.0), ap


def levinson(r: np.ndarray, order: int) -> np.ndarray:
    """Batched Levinson-Durbin: autocorrelations [n, order+1] -> LPC polynomials [n, order+1] (a0 = 1)."""
    n = r.shape[0]
    a = np.zeros((n, order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        acc = r[:, i] + np.einsum("nj,nj->n", a[:, 1:i], r[:, i - 1 : 0 : -1])
        k = -acc / np.maximum(err, 1e-12)
        a[:, 1 : i + 1] = a[:, 1 : i + 1] + k[:, None] * np.concatenate(
            [a[:, i - 1 : 0 : -1], np.ones((n, 1))], 1
        )
        err = err * (1 - k**2)
    return a


def lpc_formants(x: np.ndarray, frames_idx: np.ndarray, order: int = 14, max_frames: int = 40) -> np.ndarray:
    """F1..F3 of voiced frames by LPC root-finding: [9] = (mean kHz, std kHz, median bandwidth kHz) x 3."""
    if frames_idx.size < 3:
        return np.zeros(9)
    sel = frames_idx[np.linspace(0, frames_idx.size - 1, min(max_frames, frames_idx.size)).astype(int)]
    pre = np.append(x[0], x[1:] - 0.97 * x[:-1])
    fr = frame(pre, WIN, HOP)[np.minimum(sel, (pre.size - WIN) // HOP)] * np.hamming(WIN)
    r = np.fft.irfft(np.abs(np.fft.rfft(fr, 1024, axis=1)) ** 2, axis=1)[:, : order + 1]
    keep = r[:, 0] > 1e-10
    if keep.sum() < 2:
        return np.zeros(9)
    r = r[keep]
    r[:, 0] *= 1.0001
    a = levinson(r, order)
    comp = np.zeros((a.shape[0], order, order))
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    roots = np.linalg.eigvals(comp)  # [n, order]
    out = []
    for rt in roots:
        rt = rt[np.imag(rt) > 0]
        fq = np.angle(rt) * SR / (2 * np.pi)
        bw = -np.log(np.abs(rt) + 1e-12) * SR / np.pi
        ok = (fq > 150) & (fq < 4500) & (bw < 500)
        fq, bw = fq[ok], bw[ok]
        o = np.argsort(fq)
        if o.size >= 3:
            out.append(np.concatenate([fq[o[:3]], bw[o[:3]]]))
    if len(out) < 2:
        return np.zeros(9)
    v = np.array(out) / 1000.0
    return np.array(
        [
            v[:, 0].mean(),
            v[:, 0].std(),
            np.median(v[:, 3]),
            v[:, 1].mean(),
            v[:, 1].std(),
            np.median(v[:, 4]),
            v[:, 2].mean(),
            v[:, 2].std(),
            np.median(v[:, 5]),
        ]
    )
