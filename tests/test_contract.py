"""The declared transform contract: what a stage returns, its time axis and its length rule are
members of the class (never inferred from module names); user classes are first-class in
Compose, the collate functions and recipes; two classes with one short name are an error."""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from nnaudio_data import Transform
from nnaudio_data.batch import SpecBatch, WaveBatch
from nnaudio_data.compose import Compose, apply_to_batch, output_kind
from nnaudio_data.features import STFT, CQT1992v2, iCQT
from nnaudio_data.pipeline import SpecCollate
from nnaudio_data.recipes import dump_recipe, load_recipe

STAGE = '''
import torch
from nnaudio_data import Transform


class {name}(Transform):
    """Frame energies of ``hop`` samples: a spectrogram ``(batch, 1, n // hop)``."""

    output_kind = "spectrogram"

    def __init__(self, hop: int = 100) -> None:
        super().__init__()
        self.hop = hop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1] // self.hop
        return x[..., : n * self.hop].reshape(x.shape[0], 1, n, self.hop).square().sum(-1)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(lengths) // self.hop
'''


def _user_module(tmp_path: Path, module: str, name: str = "Energy") -> type[Transform]:
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(STAGE.format(name=name)))
    if str(tmp_path) not in sys.path:
        sys.path.insert(0, str(tmp_path))
    cls: type[Transform] = getattr(importlib.import_module(module), name)
    return cls


def test_every_feature_declares_its_output() -> None:
    assert output_kind(STFT(n_fft=256)) == ("spectrogram", -2)  # Complex (.., frames, 2)
    assert output_kind(STFT(n_fft=256, output_format="Magnitude")) == ("spectrogram", -1)
    assert output_kind(iCQT(sr=8000, hop_length=256, n_bins=24, fmin=100.0)) == ("waveform", -1)
    assert output_kind(torch.nn.Identity()) is None  # not a Transform: an op


def test_icqt_in_a_compose_gives_a_waveform_batch() -> None:
    # The old rule (module path + class-name prefix) took iCQT for a spectrogram.
    kw = {"sr": 8000, "hop_length": 256, "n_bins": 24, "fmin": 100.0}
    chain = Compose(CQT1992v2(**kw, output_format="Complex"), iCQT(**kw))
    assert output_kind(chain) == ("waveform", -1)
    batch = WaveBatch(audio=torch.randn(2, 4096), lengths=torch.tensor([4096, 4096]),
                      sample_rate=8000)  # fmt: skip
    out = apply_to_batch(chain, batch)
    assert isinstance(out, WaveBatch) and out.audio.ndim == 2


def test_a_bad_declaration_is_an_error() -> None:
    with pytest.raises(ValueError, match="output_kind"):

        class Wrong(Transform):
            output_kind = "spectrum"


def test_user_stage_in_compose_collate_and_recipe(tmp_path: Path) -> None:
    Energy = _user_module(tmp_path, "userfront_a")
    stage = Energy(hop=100)
    assert stage.get_config() == {"name": "userfront_a:Energy", "hop": 100}
    text = dump_recipe(Compose(stage), 16000, "energies")
    (tmp_path / "energy.toml").write_text(text)
    chain = load_recipe(tmp_path / "energy.toml")
    assert isinstance(chain[0], Energy) and chain[0].hop == 100
    x = torch.randn(3, 1000)
    torch.testing.assert_close(chain(x), stage(x))
    samples = [{"audio": torch.randn(n), "sample_rate": 16000, "key": str(n)} for n in (1000, 650)]
    batch = SpecCollate(chain, sample_rate=16000)(samples)
    assert isinstance(batch, SpecBatch) and batch.lengths.tolist() == [10, 6]


def test_two_classes_with_one_name_make_the_short_name_an_error(tmp_path: Path) -> None:
    first = _user_module(tmp_path, "userfront_b", "Twin")
    second = _user_module(tmp_path, "userfront_c", "Twin")
    with pytest.raises(ValueError, match=r"ambiguous.*userfront_b:Twin.*userfront_c:Twin"):
        Transform.from_config({"name": "Twin", "hop": 5})
    assert type(Transform.from_config({"name": "userfront_b:Twin"})) is first
    assert type(Transform.from_config({"name": "userfront_c:Twin"})) is second
    with pytest.raises(ValueError, match="cannot be imported"):
        Transform.from_config({"name": "no_such_module_xyz:Twin"})
    with pytest.raises(ValueError, match="not a Transform"):
        Transform.from_config({"name": "torch:Tensor"})


def test_cli_runs_a_recipe_with_a_user_stage(tmp_path: Path) -> None:
    Energy = _user_module(tmp_path, "userfront_d")
    (tmp_path / "energy.toml").write_text(dump_recipe(Compose(Energy(hop=160)), 16000, "e"))
    cmd = [sys.executable, "-m", "nnaudio_data.cli", "run", "--recipe",
           str(tmp_path / "energy.toml"), "--workers", "0", "--json"]  # fmt: skip
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"clips"' in done.stdout
