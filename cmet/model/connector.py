"""The C-MET connector: speech semantic vector + neutral expression window -> per-frame visual difference.

Architecture exactly as the spec (sizes from ``cfg.model``; ``model=cmet_paper`` gives d=1024, 4 layers,
4 heads, feed-forward 1024, T=5):

* visual tokenizer: each expression-code frame ``[D_v]`` is read as a 1-channel signal over its code
  values, passed through a 1-D conv stack (``conv_layers`` x Conv1d(k=3) + GELU, ``conv_channels``
  wide), flattened, projected to d and LayerNorm-ed -> one d-dim token per frame;
* reference tokenizer: the same shape with separate weights, for the previous chunk's prediction;
* speech tokenizer: Linear(D_a -> d), GELU, LayerNorm;
* token sequence ``[T reference, 1 speech, T visual]``, sinusoidal positions added to the frame tokens,
  a learned type embedding (reference / speech / visual) added to every token;
* ``nn.TransformerEncoder`` (batch first, ``n_layers`` x ``n_heads``, ``ff_dim``, ``dropout``);
* head on the last T outputs: Linear(d -> D_v), GELU, Linear(D_v -> D_v).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_positions(n: int, d: int) -> torch.Tensor:
    """Fixed sinusoidal position codes: [n, d]."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: pe[:, 1::2].shape[1]])
    return pe


class CodeTokenizer(nn.Module):
    """Per-frame expression code -> token: [B, T, D_v] -> [B, T, d] (1-D conv stack + LayerNorm)."""

    def __init__(self, d_expr: int, d_model: int, channels: int = 32, layers: int = 2):
        super().__init__()
        convs: list[nn.Module] = []
        c_in = 1
        for _ in range(max(1, layers)):
            convs += [nn.Conv1d(c_in, channels, kernel_size=3, padding=1), nn.GELU()]
            c_in = channels
        self.convs = nn.Sequential(*convs)
        self.proj = nn.Linear(channels * d_expr, d_model)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, dv = x.shape
        h = self.convs(x.reshape(b * t, 1, dv))  # [B*T, C, D_v]
        return self.norm(self.proj(h.reshape(b * t, -1))).reshape(b, t, -1)


class SpeechTokenizer(nn.Module):
    """Speech semantic vector -> one token: [B, D_a] -> [B, 1, d] (Linear, GELU, LayerNorm)."""

    def __init__(self, d_speech: int, d_model: int):
        super().__init__()
        self.proj = nn.Linear(d_speech, d_model)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(d_model)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.norm(self.act(self.proj(a)))[:, None, :]


class Connector(nn.Module):
    """C-MET connector. ``forward(ref [B,T,D_v], a [B,D_a], x [B,T,D_v]) -> [B,T,D_v]`` offsets.

    ``speech_input`` is ``"difference"`` (C-MET: a = a_{i->j}) or ``"direct"`` (the speech-direct
    baseline: a = mean target speech embedding); it only changes what the caller feeds, and is
    recorded so that inference feeds the same thing.
    """

    TYPE_REF, TYPE_SPEECH, TYPE_VISUAL = 0, 1, 2

    def __init__(
        self,
        d_speech: int,
        d_expr: int,
        d_model: int = 128,
        n_layers: int = 2,
        n_heads: int = 4,
        ff_dim: int = 256,
        dropout: float = 0.1,
        window: int = 5,
        conv_channels: int = 32,
        conv_layers: int = 2,
        speech_input: str = "difference",
    ):
        super().__init__()
        if d_model % n_heads:
            from cmet.errors import ConfigError

            raise ConfigError(f"model.d_model={d_model} must be divisible by model.n_heads={n_heads}")
        self.d_speech, self.d_expr, self.window = int(d_speech), int(d_expr), int(window)
        self.speech_input = speech_input
        self.visual_tok = CodeTokenizer(d_expr, d_model, conv_channels, conv_layers)
        self.ref_tok = CodeTokenizer(d_expr, d_model, conv_channels, conv_layers)
        self.speech_tok = SpeechTokenizer(d_speech, d_model)
        self.type_emb = nn.Embedding(3, d_model)
        self.register_buffer("pos", sinusoidal_positions(max(64, window), d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, ff_dim, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(d_model, d_expr), nn.GELU(), nn.Linear(d_expr, d_expr))
        self.dropout = nn.Dropout(dropout)

    @classmethod
    def from_cfg(cls, model_cfg, d_speech: int, d_expr: int, speech_input: str = "difference") -> Connector:
        m = model_cfg
        return cls(
            d_speech,
            d_expr,
            int(m.d_model),
            int(m.n_layers),
            int(m.n_heads),
            int(m.ff_dim),
            float(m.dropout),
            int(m.window),
            int(m.conv_channels),
            int(m.conv_layers),
            speech_input,
        )

    def tokens(self, ref: torch.Tensor, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Token sequence [B, 2T+1, d] = [T ref, 1 speech, T visual] + positions + type embeddings."""
        t = x.shape[1]
        pos = self.pos[:t][None]
        r = self.ref_tok(ref) + pos + self.type_emb.weight[self.TYPE_REF]
        s = self.speech_tok(a) + self.type_emb.weight[self.TYPE_SPEECH]
        v = self.visual_tok(x) + pos + self.type_emb.weight[self.TYPE_VISUAL]
        return torch.cat([r, s, v], dim=1)

    def forward(self, ref: torch.Tensor, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """ref [B,T,D_v], a [B,D_a], x [B,T,D_v] -> predicted per-frame visual difference [B,T,D_v]."""
        t = x.shape[1]
        h = self.encoder(self.dropout(self.tokens(ref, a, x)))
        return self.head(h[:, t + 1 :])

    def speech_token(self, a: torch.Tensor) -> torch.Tensor:
        """[B, D_a] -> [B, d] (the speech token before type embedding; used by L_cnt)."""
        return self.speech_tok(a)[:, 0]

    def visual_feature(self, diff: torch.Tensor) -> torch.Tensor:
        """Time mean of the tokenised visual difference: [B, T, D_v] -> [B, d] (used by L_cnt)."""
        return self.visual_tok(diff).mean(dim=1)
