"""Block sizes for the cache-blocked FFT path: derived from the cache sizes the OS reports, or
(opt-in) measured once per FFT size, dtype and thread count and remembered, as
``torch.backends.cudnn.benchmark`` does.

Derived: a block's windowed frames fill two L2 caches (its spectrum, as large again, is in the
L3; fewer, larger blocks also spend less on the per-operation cost, some 12 torch calls a block).
On a 2-core AVX-512 EPYC VM with 1 MiB of L2 per core (n_fft 2048, float32: 256 frames), 16 x 4 s
at 22.05 kHz took 11.5 ms on one thread with blocks of 256 frames, 13.7 with 128, 14.7 with 384,
15.6 with 512, 19-20 with 768-1024 (and 96-112 ms under load for the whole batch in one block);
on two workers 9.2 ms with 256, 10.3 with 128, 11.5 with 384; at 44.1 kHz 256-512 frames were
best (one thread 26-27 ms, two 20-21 ms). Where the L2 is smaller, a block still holds 2 MiB of
frames: its fixed cost (some 25 torch calls, ~100 us) would outweigh the cache's gain. On a 2-core
AVX2 EPYC VM with 512 KiB of L2 per core (best of 8, interleaved, a noisy host), 16 x 10 s of
``kaldi-fbank-80`` (n_fft 512) took 22.4 ms on one thread with blocks of 1024 frames against
25.1 with 512 (the two-L2 size), 29.7 with 256, 39.9 with 128, and 13.9 against 16.0 ms on two
(``ast-128-1024``: 23.8 / 26.3 and 16.7 / 19.0); a 128-band mel of 16 x 4 s at 22.05 kHz, n_fft
2048, 13.6 ms with 256 frames against 15.4 with 128 on one thread, 8.6 against 9.6 on two (n_fft
1024: 512 frames, 13.0 / 14.7 and 8.9 / 11.2 ms). Measured:
the candidates 1/4x to 4x of the derived size are timed on a synthetic batch the first time a key
is seen (tens of milliseconds) and the fastest is kept for the process. Either way the block size
changes only the speed: each frame's FFT and reduction do not depend on the block it is in.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable

import torch

__all__ = ["block_frames", "cache_sizes", "set_autotune"]

#: when the OS reports nothing (not Linux, or a VM without cache information)
_DEFAULT_L2 = 1 << 20
_DEFAULT_L3 = 8 << 20
_MIN_FRAMES, _MAX_FRAMES = 4, 1024
#: the fewest bytes of windowed frames in a derived block, whatever the L2: each block costs some
#: 25 torch calls (~100 us), which must stay small beside its work (below)
_MIN_BLOCK_BYTES = 2 << 20

_AUTOTUNE = os.environ.get("NNAUDIO_DATA_AUTOTUNE", "") not in ("", "0")
#: measured choices, ``(n_fft, dtype, threads) -> frames per block``
_TUNED: dict[tuple[int, torch.dtype, int], int] = {}


def set_autotune(enabled: bool) -> None:
    """Measure block sizes on first use (``True``) or derive them from the caches (``False``, the
    default; the environment variable ``NNAUDIO_DATA_AUTOTUNE=1`` turns it on)."""
    global _AUTOTUNE
    _AUTOTUNE = bool(enabled)


@functools.lru_cache(maxsize=1)
def cache_sizes() -> tuple[int, int]:
    """``(L2 per core, L3)`` in bytes, as ``/sys/devices/system/cpu/cpu0/cache`` reports them
    (1 MiB and 8 MiB where it does not)."""
    root = "/sys/devices/system/cpu/cpu0/cache"
    found: dict[int, int] = {}
    try:
        for index in os.listdir(root):
            if not index.startswith("index"):
                continue
            with open(f"{root}/{index}/type") as f:
                if f.read().strip() == "Instruction":
                    continue
            with open(f"{root}/{index}/level") as f:
                level = int(f.read())
            with open(f"{root}/{index}/size") as f:
                found[level] = parse_size(f.read())
    except (OSError, ValueError):
        found = {}
    return found.get(2) or _DEFAULT_L2, found.get(3) or _DEFAULT_L3


def parse_size(text: str) -> int:
    """``'1024K'`` -> 1048576 (``K``, ``M``, ``G`` or plain bytes)."""
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * scale


def derived_frames(n_fft: int, itemsize: int) -> int:
    """Frames whose windowed samples fill two L2 caches, and at least 2 MiB, within 4 and 1024."""
    l2, _ = cache_sizes()
    return min(_MAX_FRAMES, max(_MIN_FRAMES, max(2 * l2, _MIN_BLOCK_BYTES) // (n_fft * itemsize)))


def block_frames(n_fft: int, dtype: torch.dtype, threads: int) -> int:
    """Frames per block (per thread) for frames of ``n_fft`` samples of ``dtype``."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    if not _AUTOTUNE:
        return derived_frames(n_fft, itemsize)
    key = (n_fft, dtype, threads)
    if key not in _TUNED:
        _TUNED[key] = _measure(n_fft, dtype, derived_frames(n_fft, itemsize))
    return _TUNED[key]


def _measure(n_fft: int, dtype: torch.dtype, derived: int) -> int:
    """The fastest of 1/4x .. 4x ``derived`` frames per block on one thread, for the magnitude
    of a synthetic signal (best of three per candidate)."""
    from nnaudio_data.functional._blocked import stft_fft_power

    candidates = sorted(
        {min(_MAX_FRAMES, max(_MIN_FRAMES, derived * k // 4)) for k in (1, 2, 4, 8, 16)}
    )
    hop = max(1, n_fft // 4)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, (4 * max(candidates) - 1) * hop, generator=gen, dtype=dtype)
    window = torch.hann_window(n_fft, dtype=dtype)

    def run(block: int) -> None:
        stft_fft_power(
            x,
            n_fft=n_fft,
            hop_length=hop,
            window=window,
            center=True,
            pad_mode="constant",
            power=1.0,
            block=block,
            threads=1,
        )

    best, choice = float("inf"), derived
    with torch.no_grad():
        for c in candidates:
            t = min(_time(functools.partial(run, c)) for _ in range(3))
            if t < best:
                best, choice = t, c
    return choice


def _time(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
