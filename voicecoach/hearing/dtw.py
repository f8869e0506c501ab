"""Subsequence DTW of short word templates against the end of a live feature window.

The matching core of enrolment (enroll.py): frames are log-mel rows pooled to 20 ms and turned
into 13 cepstra (a smooth spectral envelope: pitch and harmonics, which differ from take to
take, drop out); template and window region are each less their own mean (mic colour and
level drop out); steps that stretch or squeeze time cost PENALTY on top of the frame distance,
so a word cannot be bent into another one. Everything is batched over windows and templates:
one vectorised step per template frame, never a Python loop over both axes.
"""

from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np

from voicecoach.hearing.features import BANDS

POOL = 2            # 10 ms frames averaged in pairs: 20 ms is fine enough for a word, 4x less work
CEPSTRA = 13
PENALTY = 25.0      # per stretch/squeeze step, ~4 frames of mismatch (tuned on bench/enroll.py data: 15-40 best)
STRETCH = 3.0       # a match spans 1/STRETCH to STRETCH times the template's length
END_FRAMES = 25     # the word's last loud frame lies 0.1-0.25 s before the window's end:
AFTER_FRAMES = 10   # over (else "pain" is heard in the "pai-n" of "paint"), and recent
QUIET_DB = 25.0     # loud: within this of the window's loudest frame (and 6 dB over its floor)
MIN_PEAK_DB = 80.0  # quieter than this at its loudest: no speech (digital silence is ~66)
DCT = np.cos(np.pi * (np.arange(BANDS)[:, None] + 0.5) * np.arange(CEPSTRA) / BANDS) * math.sqrt(2 / BANDS)


def pool(feats: np.ndarray) -> np.ndarray:
    """(..., frames, BANDS) averaged in pairs of frames, aligned to the newest frame."""
    n = feats.shape[-2] // POOL * POOL
    tail = feats[..., feats.shape[-2] - n:, :]
    return tail.reshape(*tail.shape[:-2], n // POOL, POOL, tail.shape[-1]).mean(axis=-2)


def energy_db(feats: np.ndarray) -> np.ndarray:
    """Frame energy (dB) of log-mel rows."""
    top = feats.max(axis=-1, keepdims=True)
    return (10 / math.log(10)) * (top[..., 0] + np.log(np.exp(feats - top).sum(axis=-1)))


def frame_costs(templates: np.ndarray, windows: np.ndarray, gram: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """Euclidean distances (B, K, M, N) between zero-mean template frames (K, M, C) and window
    frames (B, N, C) less `mu` (B, K, C), the mean of the region each template is matched
    against; `gram` (B, K, M, N) holds the template-window dot products (they do not change)."""
    per_row = (templates ** 2).sum(-1)[None] + 2 * np.einsum("kmc,bkc->bkm", templates, mu)
    per_col = (np.einsum("bnc,bnc->bn", windows, windows)[:, None] + (mu ** 2).sum(-1)[..., None]
               - 2 * np.einsum("bnc,bkc->bkn", windows, mu))
    sq = gram * np.float32(-2)
    sq += per_row[..., None].astype(np.float32)
    sq += per_col[:, :, None, :].astype(np.float32)
    return np.sqrt(np.maximum(sq, 0, out=sq), out=sq)


def subsequence_dtw(cost: np.ndarray, lengths: np.ndarray, first: np.ndarray, last: int
                    ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best match of each of K templates (rows; `lengths` frames, zero-padded) in each of B
    windows (columns) from costs (B, K, M, N): free start, end between `first` (B,) and
    `last`. Steps: diagonal weighs 2, the others 1 plus PENALTY, so a path's weight is
    template length + span - 1, and the distance is the path's cost over that weight.
    Returns per (B, K) the distance (inf if no admissible end), start and end column.

    Each row is one vectorised step: x_j = min(a_j, x_j-1 + c_j) is
    x = S + minimum.accumulate(a - S) with S = cumsum(c); a cell's start is carried along by
    the index of that running minimum."""
    (b, k, m, n), r = cost.shape, cost.shape[0] * cost.shape[1]
    rows = np.ascontiguousarray(cost.transpose(2, 0, 1, 3).reshape(m, r, n))   # row i: (B*K, N)
    double = 2 * rows
    d = np.full((r, n + 1), np.inf, np.float32)          # column 0: before the window
    d[:, 1:] = rows[0]                                   # free start: the first frame anywhere
    rows += np.float32(PENALTY)
    csum = np.cumsum(rows, axis=-1)
    s = np.tile(np.arange(-1, n), (r, 1))                # where each cell's path starts
    d_prev, d_here, s_prev, s_here = d[:, :-1], d[:, 1:], s[:, :-1], s[:, 1:]
    diag, vert = np.empty((r, n), np.float32), np.empty((r, n), np.float32)
    better, src = np.empty((r, n), bool), np.empty((r, n), np.int64)
    cols, flat = np.arange(n), (np.arange(r) * n)[:, None]
    ending = {length - 1: np.flatnonzero(lengths == length) for length in set(lengths.tolist())}
    ends = cols[None, :last + 1] >= first[:, None]
    best = np.full((b, k), np.inf)
    start, end = np.zeros((b, k), np.int64), np.zeros((b, k), np.int64)
    for i in range(m):
        if i:
            np.add(d_prev, double[i], out=diag)
            np.add(d_here, rows[i], out=vert)
            np.less(diag, vert, out=better)
            from_start = np.where(better, s_prev, s_here)
            np.minimum(diag, vert, out=vert)
            np.subtract(vert, csum[i], out=vert)         # a - S
            np.minimum.accumulate(vert, axis=1, out=d_here)
            np.equal(vert, d_here, out=better)           # where the running minimum was set
            np.multiply(cols, better, out=src)
            np.maximum.accumulate(src, axis=1, out=src)
            src += flat
            from_start.take(src, out=s_here)
            d_here += csum[i]
        for t in ending.get(i, ()):                      # template t ends on this row
            here = d[t::k, 1:last + 2]
            begin = s[t::k, 1:last + 2]
            span = cols[:last + 1] - begin + 1
            score = here / (lengths[t] + span - 1)
            score[~ends | (span * STRETCH < lengths[t]) | (span > lengths[t] * STRETCH)] = np.inf
            j = score.argmin(axis=-1)
            at = np.arange(b)
            best[:, t], start[:, t], end[:, t] = score[at, j], begin[at, j], j
    return best, start, end


def prepare(takes: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Log-mel takes as templates: pooled cepstra, each less its own mean, zero-padded into
    one (K, M, CEPSTRA) array; and their lengths."""
    ceps = [pool(np.asarray(t, np.float64)) @ DCT for t in takes]
    lengths = np.array([len(c) for c in ceps])
    out = np.zeros((len(ceps), lengths.max(), CEPSTRA))
    for k, c in enumerate(ceps):
        out[k, :len(c)] = c - c.mean(axis=0)
    return out, lengths


def match_end(templates: np.ndarray, lengths: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Per log-mel window (B, frames, BANDS): the best distance of any template whose match
    ends at or after the window's last loud frame, that frame 0.1-0.25 s before the window's
    end (inf where there is none: silence, speech still going on, or nothing recent)."""
    w = pool(np.asarray(windows, np.float64))
    out = np.full(len(w), np.inf)
    n = w.shape[1]
    if n < 2:
        return out
    energy = energy_db(w)
    peak = energy.max(1)
    floor = np.sort(energy, axis=1)[:, n // 20]                     # 5th percentile
    loud = energy > np.maximum(peak - QUIET_DB, floor + 6)[:, None]
    last_loud = n - 1 - np.argmax(loud[:, ::-1], axis=1)
    last = n - 1 - AFTER_FRAMES // POOL
    ok = np.flatnonzero(loud.any(1) & (peak >= MIN_PEAK_DB)
                        & (last_loud >= n - END_FRAMES // POOL) & (last_loud <= last))
    if len(ok) == 0:
        return out
    w, last_loud = w[ok] @ DCT, last_loud[ok]
    b, k, m = len(ok), len(lengths), templates.shape[1]
    gram = (w.reshape(-1, CEPSTRA) @ templates.reshape(-1, CEPSTRA).T
            ).reshape(b, n, k, m).transpose(0, 2, 3, 1).astype(np.float32)
    # pass 1: each template against the window less the mean of as many frames up to the
    # word's end; pass 2: less the mean of the region pass 1 matched (as a template is less its own)
    lo = np.maximum(last_loud[:, None] - lengths[None, :] + 1, 0)
    hi = np.broadcast_to(last_loud[:, None], lo.shape)
    for _ in range(2):
        inside = (np.arange(n) >= lo[..., None]) & (np.arange(n) <= hi[..., None])
        mu = np.einsum("bkn,bnc->bkc", inside, w) / np.maximum(inside.sum(-1), 1)[..., None]
        score, lo, hi = subsequence_dtw(frame_costs(templates, w, gram, mu), lengths, last_loud, last)
    out[ok] = score.min(axis=1)
    return out
