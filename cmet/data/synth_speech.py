"""A small, licence-clean source-filter speech synthesiser with emotional prosody.

Not words: "sentences" are fixed sequences of consonant-vowel syllables (a sentence id -> the same
syllables for every speaker and emotion, as MEAD's sentences are shared). Per syllable:

* source: a glottal pulse train at a time-varying F0 (phase accumulator, one pulse a period,
  with jitter = period-to-period F0 perturbation and shimmer = amplitude perturbation), shaped
  by a glottal low-pass whose cutoff sets the spectral tilt (pressed vs. lax voice), plus
  aspiration noise gated by the glottal cycle (breathiness);
* filter: a cascade of 4 formant resonators (Klatt-style second-order sections) for the
  vowel (a e i o u; Peterson & Barney-like values) scaled by the speaker's vocal-tract factor;
* consonants: stops (closure silence + noise burst), fricatives (high-passed noise), nasals
  (voiced, low formants, damped).

Emotion prosody follows the published acoustic profiles of vocal emotion (Scherer 2003,
"Vocal communication of emotion: a review of research paradigms", Speech Communication 40;
Juslin & Laukka 2003, "Communication of emotions in vocal expression and music performance",
Psychological Bulletin 129; Banse & Scherer 1996): anger = higher, wider F0, faster, louder,
flatter spectrum (more high-frequency energy); happiness = higher, much wider F0, faster,
louder; sadness = lower, narrow F0, slow, soft, steep spectral tilt, breathy; fear = high F0,
fast, irregular (jitter), breathy; surprise = high, very wide F0, final rise; disgust = low F0,
slow, creaky/irregular; contempt = low F0, slow, falling contours. ``level`` (1..3) scales the
deviation from neutral. The numbers in :data:`EMOTION_PROFILES` are our reading of the direction
and rough size of those effects, not values copied from a table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

SR = 16_000

#: vowel -> (F1, F2, F3, F4) Hz for an adult male tract; openness, spread, rounding for the lips
VOWELS = {
    "a": ((730, 1090, 2440, 3400), (1.0, 0.3, 0.0)),
    "e": ((530, 1840, 2480, 3500), (0.6, 0.7, 0.0)),
    "i": ((270, 2290, 3010, 3700), (0.25, 1.0, 0.0)),
    "o": ((570, 840, 2410, 3300), (0.6, 0.0, 0.8)),
    "u": ((300, 870, 2240, 3300), (0.3, 0.0, 1.0)),
}
CONSONANTS = ("p", "t", "k", "s", "f", "sh", "m", "n", "l", "")

#: emotion -> prosody deviations at full intensity. f0: semitones; range: x F0 excursion;
#: rate: x syllable rate; loud: dB; tilt: glottal low-pass cutoff factor (>1 = flatter spectrum);
#: breath: added aspiration; jitter: period perturbation (fraction); final: semitones at the end
EMOTION_PROFILES: dict[str, dict[str, float]] = {
    "neutral": dict(f0=0.0, range=1.0, rate=1.0, loud=0.0, tilt=1.0, breath=0.0, jitter=0.0, final=-1.0),
    "angry": dict(f0=3.5, range=1.5, rate=1.15, loud=7.0, tilt=2.2, breath=-0.03, jitter=0.008, final=-2.5),
    "happy": dict(f0=4.5, range=1.9, rate=1.12, loud=4.0, tilt=1.5, breath=0.0, jitter=0.002, final=1.0),
    "sad": dict(f0=-2.0, range=0.45, rate=0.75, loud=-6.0, tilt=0.55, breath=0.10, jitter=0.006, final=-2.0),
    "fear": dict(f0=6.0, range=1.1, rate=1.3, loud=1.0, tilt=1.2, breath=0.08, jitter=0.025, final=0.5),
    "surprised": dict(f0=5.0, range=2.2, rate=1.0, loud=3.0, tilt=1.4, breath=0.02, jitter=0.003, final=5.0),
    "disgusted": dict(f0=-2.5, range=1.1, rate=0.8, loud=1.0, tilt=0.8, breath=0.03, jitter=0.03, final=-3.0),
    "contempt": dict(
        f0=-1.5, range=1.3, rate=0.85, loud=-1.0, tilt=0.9, breath=0.02, jitter=0.012, final=-4.0
    ),
}
LEVEL_SCALE = {1: 0.45, 2: 0.72, 3: 1.0}


@dataclass
class Speaker:
    """A synthetic voice: base F0 (Hz), vocal-tract scale, rate, breathiness, loudness."""

    name: str
    f0: float
    tract: float
    rate: float
    breath: float
    loud: float
    jitter: float

    @classmethod
    def random(cls, name: str, female: bool, rng: np.random.Generator) -> Speaker:
        return cls(
            name=name,
            f0=float(rng.uniform(180, 240) if female else rng.uniform(95, 135)),
            tract=float(rng.uniform(1.12, 1.22) if female else rng.uniform(0.93, 1.05)),
            rate=float(rng.uniform(0.9, 1.1)),
            breath=float(rng.uniform(0.02, 0.06) + (0.03 if female else 0.0)),
            loud=float(rng.uniform(-2, 2)),
            jitter=float(rng.uniform(0.003, 0.008)),
        )


def sentence_syllables(sentence_id: int, seed: int = 0) -> list[tuple[str, str, bool]]:
    """The syllables of sentence ``sentence_id``: [(consonant, vowel, stressed)], 6-11 of them."""
    rng = np.random.default_rng([seed, 1009, sentence_id])
    n = int(rng.integers(6, 12))
    vs = list(VOWELS)
    return [
        (CONSONANTS[rng.integers(len(CONSONANTS))], vs[rng.integers(len(vs))], bool(rng.random() < 0.35))
        for _ in range(n)
    ]


def emotion_profile(mix: Mapping[str, float] | str, level: int) -> dict[str, float]:
    """Prosody deviations of an emotion (or a blend {emotion: weight}) at an intensity level."""
    mix = {mix: 1.0} if isinstance(mix, str) else dict(mix)
    s = LEVEL_SCALE.get(int(level), 1.0)
    neu = EMOTION_PROFILES["neutral"]
    out = {}
    for key, v0 in neu.items():
        dev = sum(w * (EMOTION_PROFILES[e][key] - v0) for e, w in mix.items())
        out[key] = v0 + s * dev
    return out


def _resonator(freq: float, bw: float) -> tuple[np.ndarray, np.ndarray]:
    """Second-order resonator (b, a) at ``freq`` Hz with bandwidth ``bw`` Hz, unity gain at DC."""
    r = np.exp(-np.pi * bw / SR)
    c = -(r**2)
    b_ = 2 * r * np.cos(2 * np.pi * freq / SR)
    a0 = 1 - b_ - c
    return np.array([a0]), np.array([1.0, -b_, -c])


def _rms(x: np.ndarray, target: float) -> np.ndarray:
    """Scale a segment to an RMS level."""
    return x * (target / (np.sqrt(np.mean(x**2)) + 1e-12))


def _glottal_source(
    f0: np.ndarray, rng: np.random.Generator, jitter: float, shimmer: float, tilt: float, breath: float
) -> np.ndarray:
    """Pulse train at per-sample F0 [S] with jitter/shimmer, low-passed (tilt), plus pulsed aspiration."""
    from scipy.signal import lfilter

    n = f0.shape[0]
    # per-period perturbations, indexed by the period count of the unperturbed phase
    k0 = np.floor(np.cumsum(f0) / SR + rng.uniform(0, 1)).astype(np.int64)
    jit = 1 + jitter * rng.standard_normal(k0[-1] + 2)
    shim = 1 + shimmer * rng.standard_normal(k0[-1] + 2)
    inc = f0 * jit[k0] / SR
    phase = np.cumsum(inc) + rng.uniform(0, 1)
    cyc = np.floor(phase).astype(np.int64)
    hit = np.flatnonzero(np.diff(cyc, prepend=cyc[0]) > 0)
    src = np.zeros(n)
    frac = (phase[hit] - cyc[hit]) / np.maximum(inc[hit], 1e-9)  # how far past the pulse time
    amp = shim[np.minimum(k0[hit], shim.size - 1)]
    src[hit] += amp * (1 - frac)
    nxt = np.minimum(hit + 1, n - 1)
    np.add.at(src, nxt, amp * frac)
    gate = phase - cyc
    # glottal flow: two one-pole low-passes; the cutoff sets the spectral tilt
    fc = np.clip(900.0 * tilt, 150.0, 4000.0)
    p = np.exp(-2 * np.pi * fc / SR)
    flow = lfilter([1 - p], [1, -p], lfilter([1 - p], [1, -p], src))
    deriv = np.diff(flow, prepend=0.0) * (SR / (2 * np.pi * fc))
    noise = rng.standard_normal(n) * (0.3 + 0.7 * (gate < 0.4)) * max(breath, 0.0) * 0.25
    return deriv + noise


def synthesize(
    syllables: list[tuple[str, str, bool]],
    speaker: Speaker,
    mix: Mapping[str, float] | str = "neutral",
    level: int = 1,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, dict]:
    """Render one utterance: (wave [S] float32 at 16 kHz, info).

    info: ``profile`` (the prosody used), ``duration_s``.
    """
    from scipy.signal import lfilter

    rng = rng or np.random.default_rng(0)
    prof = emotion_profile(mix, level)
    rate = speaker.rate * prof["rate"] * rng.uniform(0.95, 1.05)
    base_st = 12 * np.log2(speaker.f0 / 100.0) + prof["f0"]
    rng_st = 2.5 * prof["range"]
    breath = speaker.breath + prof["breath"]
    jitter = speaker.jitter + prof["jitter"]
    tilt = prof["tilt"] * (1 + 0.05 * rng.standard_normal())
    gain = 10 ** ((speaker.loud + prof["loud"]) / 20) * 0.08
    segs: list[np.ndarray] = [np.zeros(int(0.15 * SR))]
    nsyl = len(syllables)
    zi = [np.zeros(2) for _ in range(4)]
    for j, (cons, vowel, stressed) in enumerate(syllables):
        pos = j / max(nsyl - 1, 1)
        # consonant
        if cons in ("p", "t", "k"):
            clos = np.zeros(int(0.05 * SR / rate))
            b, a = _resonator({"p": 800, "t": 4000, "k": 2000}[cons] * speaker.tract, 1500)
            burst = _rms(lfilter(b, a, rng.standard_normal(int(0.015 * SR))), 0.3 * gain)
            segs += [clos, burst * np.linspace(1, 0.2, burst.size)]
        elif cons in ("s", "f", "sh"):
            fc = {"s": 6000, "f": 4500, "sh": 3200}[cons] * min(speaker.tract, 1.1)
            b, a = _resonator(min(fc, 7500), 2000)
            nz = lfilter(b, a, rng.standard_normal(int(0.09 * SR / rate)))
            segs.append(_rms(nz, (0.15 if cons != "f" else 0.06) * gain) * np.hanning(nz.size) * 1.4)
        # vowel (nasals/l: a short voiced murmur before it)
        dur = (0.13 + (0.06 if stressed else 0.0)) / rate * rng.uniform(0.85, 1.15)
        n = int(dur * SR)
        tt = np.linspace(0, 1, n)
        decl = -2.0 * pos  # declination, semitones
        accent = rng_st * (1.0 if stressed else 0.35) * np.sin(np.pi * tt) * rng.uniform(0.6, 1.2)
        final = prof["final"] * np.clip((pos - 0.7) / 0.3, 0, 1) * tt if j == nsyl - 1 else 0.0
        st = base_st + decl + accent + final + 0.3 * rng.standard_normal()
        f0 = 100.0 * 2 ** (st / 12)
        src = _glottal_source(f0, rng, jitter, 0.04 + 4 * max(jitter - 0.005, 0), tilt, breath)
        forms, _lips = VOWELS[vowel]
        scale = speaker.tract * rng.uniform(0.97, 1.03)
        y = src
        for q, (fq, bw) in enumerate(zip(forms, (70, 90, 130, 200), strict=True)):
            fq = fq * scale
            b, a = _resonator(min(fq, 7600), bw * (1 + 2 * max(breath, 0)))
            y, zi[q] = lfilter(b, a, y, zi=zi[q])
        amp_env = np.minimum(1, np.minimum(tt / 0.15, (1 - tt) / 0.2)) ** 0.7
        stress_gain = 1.25 if stressed else 0.85
        seg = _rms(y, gain * stress_gain) * amp_env * (1 + 0.15 * np.sin(np.pi * tt))
        if cons in ("m", "n", "l"):  # a voiced murmur (low resonance, damped highs) before the vowel
            m = int(0.05 * SR / rate)
            ms = _glottal_source(np.full(m, f0[0]), rng, jitter, 0.04, tilt * 0.6, breath)
            for fq, bw in ((250.0, 100.0), (1200.0 if cons == "l" else 2200.0, 300.0)):
                b, a = _resonator(fq * speaker.tract, bw)
                ms = lfilter(b, a, ms)
            segs.append(_rms(ms, 0.35 * gain * stress_gain) * np.minimum(1, np.linspace(0, 4, m)))
        segs.append(seg)
        # short pauses between phrases
        if j > 0 and j % 4 == 3 and j < nsyl - 1 and rng.random() < 0.5:
            segs.append(np.zeros(int(rng.uniform(0.08, 0.2) * SR / rate)))
    segs.append(np.zeros(int(0.15 * SR)))
    wave = np.concatenate(segs)
    wave += 1e-4 * rng.standard_normal(wave.size)  # room noise floor (-80 dB)
    peak = np.abs(wave).max()
    if peak > 0.98:  # keep it unclipped; loudness differences survive in the spectrum
        wave *= 0.98 / peak
    info = {"profile": prof, "duration_s": wave.size / SR}
    return wave.astype(np.float32), info


def vowel_shapes_at_fps(wave: np.ndarray, n: int, fps: float) -> np.ndarray:
    """Approximate lip shape per video frame [n, 3] (openness, spread, rounding) from the audio alone.

    Openness from low-band energy share (F1 region), spread from the F2 region's share, rounding from
    the inverse: a cheap acoustic-to-articulatory proxy used for the generated set's lip track.
    """
    hop = SR / fps
    out = np.zeros((n, 3), np.float32)
    for i in range(n):
        seg = wave[int(i * hop) : int((i + 1) * hop)]
        if seg.size < 64:
            continue
        spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size), 1024)) ** 2
        f = np.fft.rfftfreq(1024, 1 / SR)
        low = spec[(f > 200) & (f < 900)].sum()
        mid = spec[(f > 1500) & (f < 2800)].sum()
        tot = spec[(f > 100) & (f < 4000)].sum() + 1e-12
        out[i] = (low / tot, mid / tot, max(0.0, 1 - 2.5 * mid / tot))
    return out
