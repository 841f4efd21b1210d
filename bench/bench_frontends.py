"""Pretrained-model front ends: our recipes against the originals as their users run them, and
against the floor (a bare ``torch.stft`` and ``|X|^2`` of the same size), side by side in one
process.

Workload: 16 clips x 10 s at the recipe's sample rate (16 kHz; PANNs 32 kHz; CLAP 48 kHz), with
1 and 2 threads (torch, and the BLAS / OpenMP pools through ``bench._common.set_threads``).
The originals, run as their users run them:

- whisper-80 / -128: openai-whisper ``log_mel_spectrogram(pad_or_trim(x))`` per clip; HF
  ``WhisperFeatureExtractor`` on the list of 16 (it pads them and runs one batched torch STFT) and
  per clip;
- whisper-80-nopad: openai ``log_mel_spectrogram(x)`` per clip;
- kaldi-fbank-80: kaldi-native-fbank ``OnlineFbank`` per clip;
- lhotse-fbank-80: lhotse ``Fbank().extract_batch`` on the list;
- ast-128 / ast-128-1024: HF ``ASTFeatureExtractor`` on the list (its numpy path; torchaudio's Kaldi
  fbank where torchaudio imports, as beside a CUDA torch);
- vggish-64: torchvggish ``mel_features.log_mel_spectrogram`` per clip (the log-mel that
  ``waveform_to_examples`` frames into patches);
- panns-64 / clap-htsat-64: torchlibrosa ``Spectrogram`` + ``LogmelFilterBank`` on the batch.

The floor: ``torch.stft`` of the recipe's FFT size and hop over the clips' frames, then
``re * re + im * im`` on ``view_as_real`` (no mel, no log; for the Kaldi-framed recipes n_fft 512
with a 400-sample window, centre False). Every case runs once per round, interleaved, with a
pause before each call (``../shared/PERF_NOTES.md``), all recipes of a thread count in one
group (each round times every recipe's cases, so a slow spell of a shared host falls on all
of them); the table gives the best (minimum) and the median ms. Targets, printed met / missed
per recipe and thread count, ours against the floor timed in the same rounds (its own row;
printed beside it: the ratio to the best floor of every row of that FFT size and hop, a best
over more calls, and the median over rounds of ours / the floor of the same round, which a slow
spell of a shared host falling on both leaves alone):

- ours <= 1.3x the floor;
- ours never slower than any original;
- ours >= 3x faster than each original that is itself above 4x the floor.

Before timing, ours is checked against each original on the first clip (max abs difference over
the valid frames), so the table compares computations that give the same numbers.

On a GPU (``--device cuda``) ours and the floor run there (each call timed to a
``torch.cuda.synchronize``), as do the originals that can (openai-whisper and HF's Whisper
extractor with ``device='cuda'``, torchlibrosa moved to the GPU); the CPU-only originals are checked
against ours but not timed. ``--tf32`` allows TF32 in matmuls and cuDNN convolutions for the run
(a user's global setting, which the recipes must not depend on: the checks show it).

Run from the repository root::

    .venv/bin/python -m bench.bench_frontends                 # all recipes, 1 and 2 threads
    .venv/bin/python -m bench.bench_frontends --quick         # 2 threads, 3 rounds
    .venv/bin/python -m bench.bench_frontends --recipes whisper-80 panns-64 --rounds 9
    python -m bench.bench_frontends --device cuda --threads 16 --batch 256   # on a GPU
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from bench._common import (
    Case,
    Timing,
    machine_details,
    make_batch,
    markdown_table,
    set_threads,
    time_cases,
)

RECIPES = [
    "whisper-80",
    "whisper-128",
    "whisper-80-nopad",
    "kaldi-fbank-80",
    "lhotse-fbank-80",
    "ast-128",
    "ast-128-1024",
    "vggish-64",
    "panns-64",
    "clap-htsat-64",
]
RATES = {"panns-64": 32000, "clap-htsat-64": 48000}

# the floor's STFT: (n_fft, hop, window length, center)
FLOOR = {
    "whisper": (400, 160, 400, True),
    "kaldi": (512, 160, 400, False),  # Kaldi framing: 400 samples in a 512-point FFT
    "lhotse": (512, 160, 400, True),  # snip_edges False: about one frame per hop, as centred
    "panns-64": (1024, 320, 1024, True),
    "clap-htsat-64": (1024, 480, 1024, True),
}


def _floor_key(name: str) -> str:
    if name.startswith("whisper"):
        return "whisper"
    if name.startswith(("kaldi", "ast", "vggish")):
        return "kaldi"
    if name.startswith("lhotse"):
        return "lhotse"
    return name


@dataclass(frozen=True)
class Impl:
    """One timed implementation; ``out()`` gives clip 0's features ``(features, frames)`` for the
    accuracy check (None: not comparable, e.g. the floor)."""

    name: str
    fn: Callable[[], object]
    out: Callable[[], np.ndarray] | None = None
    kind: str = "original"  # "ours", "floor" or "original"
    on_device: bool = True  # False: a CPU-only original, checked but not timed on a GPU


def _gpu(device: str) -> str:
    return "" if device == "cpu" else f", {device}"


def _originals(name: str, xn: np.ndarray, device: str = "cpu") -> list[Impl]:
    """The original(s) of ``name`` on the float32 ``(16, n)`` batch, as their users run them; those
    that can run on ``device`` run there (the others are marked ``on_device=False``)."""
    clips = list(xn)
    on_cpu = device == "cpu"  # CPU-only originals are timed only in a CPU run
    if name.startswith("whisper"):
        import whisper.audio as wa
        from transformers import WhisperFeatureExtractor

        n_mels = 128 if name == "whisper-128" else 80
        if name == "whisper-80-nopad":

            def openai_nopad() -> list[torch.Tensor]:
                return [
                    wa.log_mel_spectrogram(torch.from_numpy(c), n_mels, device=device)
                    for c in clips
                ]

            return [
                Impl(
                    f"openai log_mel_spectrogram (per clip{_gpu(device)})",
                    openai_nopad,
                    lambda: openai_nopad()[0].cpu().numpy(),
                )
            ]

        def openai() -> list[torch.Tensor]:
            return [
                wa.log_mel_spectrogram(wa.pad_or_trim(torch.from_numpy(c)), n_mels, device=device)
                for c in clips
            ]

        hf = WhisperFeatureExtractor(feature_size=n_mels)

        def hf_list() -> np.ndarray:
            return hf(clips, sampling_rate=16000, return_tensors="np", device=device)[
                "input_features"
            ]

        def hf_each() -> list[np.ndarray]:
            return [
                hf(c, sampling_rate=16000, return_tensors="np", device=device)["input_features"][0]
                for c in clips
            ]

        g = _gpu(device)
        return [
            Impl(f"openai log_mel_spectrogram(pad_or_trim) (per clip{g})", openai, lambda: openai()[0].cpu().numpy()),
            Impl(f"HF WhisperFeatureExtractor (list of {len(clips)}{g})", hf_list, lambda: hf_list()[0]),
            Impl(f"HF WhisperFeatureExtractor (per clip{g})", hf_each, lambda: hf_each()[0]),
        ]  # fmt: skip
    if name == "kaldi-fbank-80":
        import kaldi_native_fbank as knf

        opts = knf.FbankOptions()
        opts.frame_opts.dither = 0.0
        opts.frame_opts.samp_freq = 16000
        opts.mel_opts.num_bins = 80

        def knf_each() -> list[np.ndarray]:
            out = []
            for c in clips:
                fb = knf.OnlineFbank(opts)
                fb.accept_waveform(16000, c)
                fb.input_finished()
                out.append(np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)]))
            return out

        return [
            Impl(
                "kaldi-native-fbank OnlineFbank (per clip)",
                knf_each,
                lambda: knf_each()[0].T,
                on_device=on_cpu,
            )
        ]
    if name == "lhotse-fbank-80":
        from lhotse import Fbank, FbankConfig

        lh = Fbank(FbankConfig())

        def lhotse_batch() -> object:
            return lh.extract_batch(clips, 16000)

        return [
            Impl(
                f"lhotse Fbank.extract_batch (list of {len(clips)})",
                lhotse_batch,
                lambda: np.asarray(lhotse_batch()[0]).T,  # type: ignore[index]
                on_device=on_cpu,
            )
        ]
    if name.startswith("ast"):
        from transformers import ASTFeatureExtractor
        from transformers.utils import is_speech_available

        # HF takes torchaudio's Kaldi fbank where torchaudio imports (beside a CUDA torch), else numpy
        path = "torchaudio" if is_speech_available() else "numpy"

        own = 1 + (xn.shape[1] - 400) // 160
        ast = ASTFeatureExtractor(max_length=1024 if name == "ast-128-1024" else own)

        def ast_list() -> list[np.ndarray]:
            return ast(clips, sampling_rate=16000, return_tensors="np")["input_values"]

        return [
            Impl(
                f"HF ASTFeatureExtractor, {path} (list of {len(clips)})",
                ast_list,
                lambda: ast_list()[0].T,
                on_device=on_cpu,
            )
        ]
    if name == "vggish-64":
        from torchvggish import mel_features, vggish_params

        def vggish_each() -> list[np.ndarray]:
            return [
                mel_features.log_mel_spectrogram(
                    c,
                    audio_sample_rate=16000,
                    log_offset=vggish_params.LOG_OFFSET,
                    window_length_secs=vggish_params.STFT_WINDOW_LENGTH_SECONDS,
                    hop_length_secs=vggish_params.STFT_HOP_LENGTH_SECONDS,
                    num_mel_bins=vggish_params.NUM_MEL_BINS,
                    lower_edge_hertz=vggish_params.MEL_MIN_HZ,
                    upper_edge_hertz=vggish_params.MEL_MAX_HZ,
                )
                for c in clips
            ]

        return [
            Impl(
                "torchvggish log_mel_spectrogram (per clip)",
                vggish_each,
                lambda: vggish_each()[0].T,
                on_device=on_cpu,
            )
        ]
    # panns-64, clap-htsat-64: torchlibrosa as Cnn14 / HTSAT build it
    from torchlibrosa.stft import LogmelFilterBank, Spectrogram

    sr = RATES[name]
    hop = FLOOR[name][1]
    spec = Spectrogram(
        n_fft=1024, hop_length=hop, win_length=1024, window="hann", center=True,
        pad_mode="reflect", freeze_parameters=True,
    )  # fmt: skip
    logmel = LogmelFilterBank(
        sr=sr, n_fft=1024, n_mels=64, fmin=50.0, fmax=14000.0, ref=1.0, amin=1e-10,
        top_db=None, freeze_parameters=True,
    )  # fmt: skip
    spec, logmel = spec.to(device), logmel.to(device)
    x = torch.from_numpy(xn).to(device)

    def tl_batch() -> torch.Tensor:
        with torch.no_grad():
            return logmel(spec(x))

    return [Impl(f"torchlibrosa Spectrogram + LogmelFilterBank (batch{_gpu(device)})", tl_batch, lambda: tl_batch()[0, 0].T.cpu().numpy())]  # fmt: skip


def _floor(name: str, x: torch.Tensor) -> Impl:
    n_fft, hop, win, center = FLOOR[_floor_key(name)]
    w = torch.hann_window(win, device=x.device)

    def floor() -> torch.Tensor:
        spec = torch.stft(
            x, n_fft, hop, win_length=win, window=w, center=center, return_complex=True
        )
        r = torch.view_as_real(spec)
        re, im = r[..., 0], r[..., 1]
        return re * re + im * im

    label = f"floor: torch.stft({n_fft}, hop {hop}{', centre' if center else ''}) + |X|^2"
    return Impl(label, floor, kind="floor")


def _ours(name: str, x: torch.Tensor) -> Impl | None:
    try:
        from nnaudio_data.recipes import load_recipe

        fe = load_recipe(name).eval().to(x.device)
    except (ImportError, ValueError) as e:
        print(f"  {name}: our recipe is not available here ({e})", file=sys.stderr)
        return None
    lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
    valid = int(fe.output_lengths(lengths)[0])

    def run() -> torch.Tensor:
        with torch.no_grad():
            return fe(x, lengths=lengths)

    def first() -> np.ndarray:
        out = run()[0].cpu().numpy()
        return out if name in ("whisper-80", "whisper-128", "ast-128-1024") else out[:, :valid]

    return Impl(f"nnaudio_data {name}", run, first, kind="ours")


def build(name: str, batch: int, seconds: float, device: str = "cpu") -> list[Impl]:
    """The cases of one recipe on ``device``; ours checked against each original (printed)."""
    sr = RATES.get(name, 16000)
    xn = make_batch(batch, seconds, sr)
    x = torch.from_numpy(xn).to(device)
    impls = [_floor(name, x), *_originals(name, xn, device)]
    mine = _ours(name, x)
    if mine is not None and mine.out is not None:
        ref_out = mine.out()
        for impl in impls:
            if impl.out is not None:
                theirs = impl.out()
                if theirs.shape == ref_out.shape:
                    diff = float(np.max(np.abs(theirs.astype(np.float64) - ref_out)))
                    print(
                        f"  check {name:16s} vs {impl.name:52s} max abs {diff:.2e}", file=sys.stderr
                    )
                else:
                    print(f"  check {name:16s} vs {impl.name:52s} SHAPES {theirs.shape} vs {ref_out.shape}", file=sys.stderr)  # fmt: skip
        impls.insert(0, mine)
    return [i for i in impls if i.on_device]


def _paired_ratio(ours: Timing, floor: Timing) -> float:
    """The median over rounds of ours / the floor in the same round (timed back to back, so a
    slow spell of a shared host that falls on both cancels)."""
    return statistics.median(o / f for o, f in zip(ours.samples_ms, floor.samples_ms, strict=True))


def _verdicts(timings: dict[str, Timing], impls: list[Impl], pooled_floor: float) -> list[str]:
    """Verdicts on the best times, ours against the floor of its own row (timed in the same
    rounds, as many times); printed beside it: ``pooled_floor``, the floor's best time over
    every row of the same FFT size and hop at this thread count (a best of more calls than
    ours had, so lower by chance alone on a noisy host), and :func:`_paired_ratio`."""
    ours = next((i for i in impls if i.kind == "ours"), None)
    floor = next(i for i in impls if i.kind == "floor")
    if ours is None:
        return ["ours: n/a"]
    best = {i.name: timings[i.name].min for i in impls}
    o, f = best[ours.name], best[floor.name]
    paired = _paired_ratio(timings[ours.name], timings[floor.name])
    out = [
        f"<= 1.3x floor: {'met' if o <= 1.3 * f else 'missed'} "
        f"({o / f:.2f}x its row's floor; {o / pooled_floor:.2f}x the best floor of any row; "
        f"median of the rounds' ours / floor {paired:.2f}x)"
    ]
    originals = [i for i in impls if i.kind == "original"]
    slower = [i.name for i in originals if o > best[i.name]]
    out.append("never slower than an original: " + ("met" if not slower else f"missed ({', '.join(slower)})"))  # fmt: skip
    slow_ones = [i for i in originals if best[i.name] > 4 * f]
    if slow_ones:
        missed = [i.name for i in slow_ones if best[i.name] < 3 * o]
        out.append(
            f">= 3x faster than the {len(slow_ones)} original(s) above 4x floor: "
            + ("met" if not missed else f"missed ({', '.join(missed)})")
        )
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="2 threads only, 3 rounds")
    ap.add_argument("--recipes", nargs="+", default=RECIPES, choices=RECIPES)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 matmuls / convolutions (GPU)")
    args = ap.parse_args(argv)
    if args.quick:
        args.threads, args.rounds = [2], 3
    sync = None
    if args.device != "cpu":
        if not torch.cuda.is_available():
            ap.error(f"--device {args.device}: torch sees no CUDA device here")
        sync = torch.cuda.synchronize
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = args.tf32
    elif args.tf32:
        ap.error("--tf32 is a GPU setting: give --device cuda")

    rows, verdict_lines, machines, busy = [], [], [], []
    for threads in args.threads:
        set_threads(threads)
        machines.append(f"{threads} thread(s): {machine_details()}")
        if args.device != "cpu":
            machines.append(
                f"{args.device}: {torch.cuda.get_device_name(args.device)}, CUDA "
                f"{torch.version.cuda}, TF32 {'allowed' if args.tf32 else 'off'}"
            )
        built = []
        for name in args.recipes:
            print(f"{name}, {threads} thread(s): building and checking ...", file=sys.stderr)
            built.append((name, build(name, args.batch, args.seconds, args.device)))
        # every recipe's cases in one interleaved group: a slow spell of the host (seen: a 2-thread
        # group running at 1-thread speed, ours and the floor alike) hits every row of a round,
        # not the recipes that happened to be timed during it
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        cases = [Case(f"{name} / {i.name}", i.fn, sync) for name, impls in built for i in impls]
        timed = time_cases(cases, rounds=args.rounds, warmup=1, pause=0.2)
        load = max(load, os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0)
        if load - threads > 0.5:  # more than this benchmark's own threads were running
            busy.append(f"{threads} thread(s): load {load:.1f}")
        measured = [
            (name, impls, {i.name: timed[f"{name} / {i.name}"] for i in impls})
            for name, impls in built
        ]
        # recipes of one FFT size and hop share a floor computation: its best over their rows
        # is printed beside each verdict
        pooled: dict[str, float] = {}
        for name, impls, timings in measured:
            f = timings[next(i for i in impls if i.kind == "floor").name].min
            pooled[_floor_key(name)] = min(f, pooled.get(_floor_key(name), f))
        for name, impls, timings in measured:
            best = {i.name: timings[i.name].min for i in impls}
            floor = next(i for i in impls if i.kind == "floor")
            ours = next((i for i in impls if i.kind == "ours"), None)
            for i in impls:
                t = timings[i.name]
                rows.append(
                    [
                        name,
                        threads,
                        i.name,
                        f"{t.min:.1f}",
                        f"{t.median:.1f}",
                        f"{t.min / best[floor.name]:.2f}x",
                        "" if ours is None else f"{best[ours.name] / t.min:.2f}x",
                    ]
                )
            verdict_lines.append(
                f"- {name}, {threads} thread(s): "
                + "; ".join(_verdicts(timings, impls, pooled[_floor_key(name)]))
            )
    print(
        f"\n{args.batch} clips x {args.seconds:g} s at each recipe's rate; best (min) and median of "
        f"{args.rounds} interleaved rounds, ms.\nMachine: " + "\n         ".join(machines) + "\n"
    )
    print(
        markdown_table(
            ["recipe", "threads", "implementation", "best ms", "median ms", "this / floor", "ours / this"],
            rows,
        )
    )  # fmt: skip
    print("\nTargets (on the best times):\n" + "\n".join(verdict_lines))
    if busy:
        print(
            "\nNOTE: the 1-minute load average exceeded this benchmark's threads while timing "
            + "; ".join(busy)
            + ": other work shared the CPUs, so these ratios are noisy."
        )


if __name__ == "__main__":
    main()
