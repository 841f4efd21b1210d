"""The memory ceiling (issue 10): the nastiest headers under an address-space limit.

A subprocess limits itself with ``resource.setrlimit(RLIMIT_AS)`` to what it holds after
importing everything plus 1.5 GiB (its DataLoader workers inherit the limit), then loads the
inputs that make a reader allocate the most: a FLAC declaring 2**36 frames (128 GiB), a 99-byte
FLAC declaring 2**27, a WAV at 1 Hz resampled to 8 kHz (1.3 GB of output), a WAV whose data chunk
declares 4 GiB, a tar member whose header claims 2 GiB and a gzip bomb (more than
``MAX_ENCODED_BYTES`` of zeros) - through the collate function in 2 workers and ``audio_pipeline``.
Every one must be counted under its reason by the bounds (no ``MemoryError``, no worker killed),
and the good clip delivered; a control shows that the limit bites: lifting ``max_samples`` makes
a longer 1 Hz clip hit it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

HEADROOM = 3 * 2**29  # 1.5 GiB: more than a gzip bomb may decompress to, far less than the claims

SCRIPT = r"""
import json, logging, resource, sys, tarfile
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import numpy as np, torch, webdataset
from torch.utils.data import DataLoader
import _faults
from nnaudio_data.io import MAX_ENCODED_BYTES, SampleError
from nnaudio_data.pipeline import SkipCounter, WaveCollate, audio_pipeline

folder, headroom = Path(sys.argv[2]), int(sys.argv[3])
by_key = {c.key: c for c in _faults.hostile_cases()}
nasty = {k: by_key[k] for k in ("good", "claims-2e36", "claims-2e27", "one-hertz", "lies-data-size")}
bomb = _faults.gzip_bomb(MAX_ENCODED_BYTES + 2**24)
paths = []
for key, c in nasty.items():
    paths.append(str(folder / f"{key}.{c.ext}"))
    Path(paths[-1]).write_bytes(c.data)
paths.append(str(folder / "bomb.wav.gz"))
Path(paths[-1]).write_bytes(bomb)
shard = str(folder / "nasty.tar")
with tarfile.open(shard, "w") as tar:
    for p in paths:
        tar.add(p, arcname=Path(p).name)
    huge = tarfile.TarInfo("huge.wav")  # a header that claims 2 GiB, then the end of the file
    huge.size = 2 * MAX_ENCODED_BYTES
    tar.fileobj.write(huge.tobuf(format=tarfile.GNU_FORMAT))
    tar.offset += tarfile.BLOCKSIZE

messages = []
class Keep(logging.Handler):
    def emit(self, record):
        messages.append(record.getMessage())
logging.getLogger("nnaudio_data").addHandler(Keep())

def vm_bytes():
    for line in open("/proc/self/status"):
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
limit = vm_bytes() + headroom
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
out = {"limit_gib": limit / 2**30}

collate = WaveCollate(sample_rate=8000, resample=True, policy="skip")
counter = SkipCounter()
loader = DataLoader(paths, batch_size=2, collate_fn=collate, num_workers=2,
                    multiprocessing_context="fork")
out["collate_keys"] = sorted(Path(k).name for b in counter.wrap(loader) for k in b.keys)
out["collate_counts"] = counter.counts
counter = SkipCounter()  # in this process, to read the messages
out["pipeline_keys"] = sorted(
    k for b in counter.wrap(audio_pipeline([shard], batch_size=2, sample_rate=8000,
                                           resample=True, policy="skip")) for k in b.keys)
out["pipeline_counts"] = counter.counts
out["memory_errors"] = sum("MemoryError" in m or "allocate" in m for m in messages)
out["refusals"] = sum("refused" in m or "more than max_samples" in m or
                      "MAX_ENCODED_BYTES" in m for m in messages)
# control: with the bound lifted, a 1 Hz clip of 80000 samples is resampled to 6.4e8 samples
# (2.6 GB): it hits the limit
slow = _faults._encode(_faults._noise(80_000, seed=1), 1, "WAV", "PCM_16")
try:
    WaveCollate(sample_rate=8000, resample=True, max_samples=2**40)([slow])
    out["control"] = "allocated"
except SampleError as error:
    out["control"] = f"{type(error.__cause__).__name__} ({error.reason}): {str(error)[:200]}"
print(json.dumps(out))
"""


def test_nastiest_headers_stay_under_a_memory_limit(tmp_path: Path) -> None:
    tests = str(Path(__file__).parent)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, tests, str(tmp_path), str(HEADROOM)],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["collate_keys"] == ["good.wav"]
    assert out["collate_counts"] == {"too_large": 4, "decode_error": 1}
    assert out["pipeline_keys"] == ["good"]
    # + huge (not read: too_large) and the end of the file inside its declared data
    assert out["pipeline_counts"] == {"too_large": 5, "decode_error": 1, "stream_error": 1}
    assert out["memory_errors"] == 0  # every refusal came from a bound, none from the limit
    assert out["refusals"] >= 5
    # the control: the same header believed (bound lifted) exhausts the limited address space,
    # a counted fault here only because of the limit (without it: the OOM-killer)
    assert out["control"].startswith(("MemoryError (too_large)", "RuntimeError (too_large)"))
    assert "allocate" in out["control"], out["control"]
