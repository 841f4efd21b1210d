"""Worker processes that die (issue 10): killed by a signal, as the OOM-killer does, or exiting.

A source item kills the worker process that loads it. Each loader must raise a clear error
within seconds (never wait for ever), leave no worker process behind (alive or zombie), and let a
new epoch start; ``audio_nodes`` names the worker, its signal and the batch. Finished workers are
reaped at the end of each epoch, not at the start of the next.
"""

from __future__ import annotations

import faulthandler
import gc
import os
import resource
import signal
import time
from typing import Any

import _hostile
import numpy as np
import pytest
import webdataset as wds
from torch.utils.data import DataLoader
from torchdata import nodes

from nnaudio_data.pipeline import AudioDataset, WaveCollate, audio_nodes

pytestmark = pytest.mark.timeout(60)

SR = 8000
MAIN = os.getpid()


class Deadly(list[Any]):
    """Clips, one of which (``index``) ends the worker process that loads it: by ``how`` =
    a signal number (``os.kill`` of itself), or ``"exit"`` (``os._exit(3)``, no clean-up)."""

    def __init__(self, n: int, index: int, how: int | str) -> None:
        super().__init__((np.full(200 + i, 0.1, np.float32), SR) for i in range(n))
        self.index, self.how = index, how

    def __getitem__(self, i: Any) -> Any:
        if i == self.index and os.getpid() != MAIN:
            if self.how == "exit":
                os._exit(3)
            # die at once and quietly: no core file (written into the working directory where
            # the host allows cores, seconds for a process this size) and no faulthandler dump
            # (pytest's, inherited by the forked worker)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            faulthandler.disable()
            os.kill(os.getpid(), int(self.how))
            time.sleep(5)  # (a signal that does not kill at once)
        return super().__getitem__(i)


@pytest.fixture(autouse=True)
def _others() -> None:
    """Child processes that earlier tests left (e.g. multiprocessing's resource tracker)."""
    global OTHERS
    OTHERS = {pid for pid, state in _hostile.children() if state != "Z"}


OTHERS: set[int] = set()


def _workers() -> list[tuple[int, str]]:
    """This test's child processes, alive or zombie."""
    return [(pid, state) for pid, state in _hostile.children() if pid not in OTHERS]


def _no_workers_left() -> None:
    deadline = time.monotonic() + 10
    while _workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _workers() == []  # no worker alive, none a zombie


HOW = [signal.SIGKILL, signal.SIGSEGV, "exit"]


def _two_workers(items: Any, policy: str) -> Any:
    """``audio_nodes`` over ``items`` in batches of 2, in 2 forked worker processes."""
    return audio_nodes(
        items,
        batch_size=2,
        num_workers=2,
        policy=policy,
        multiprocessing_context="fork",
        sample_rate=SR,
    )


@pytest.mark.parametrize("how", HOW, ids=["SIGKILL", "SIGSEGV", "exit"])
@pytest.mark.parametrize("policy", ["skip", "raise"])
def test_audio_nodes_names_the_dead_worker_and_the_batch(how: int | str, policy: str) -> None:
    source = Deadly(12, index=5, how=how)  # index 5: batch 2 at batch_size 2
    graph = _two_workers(source, policy)
    loader = nodes.Loader(graph)
    start = time.monotonic()
    got = []
    with pytest.raises(RuntimeError, match="worker process of the torchdata graph died") as info:
        for batch in loader:
            got.append(batch.lengths.tolist())
    # a hang guard, not a speed test: ~0.1 s alone, 10.2-10.3 s for SIGSEGV late in a loaded
    # full run (the cause is not yet known; see the session note), a hang is for ever
    assert time.monotonic() - start < 30
    message = str(info.value)
    status = "exit code 3" if how == "exit" else signal.Signals(int(how)).name
    assert status in message and "while loading item 2" in message, message
    assert "pid " in message
    assert got == [[200, 201], [202, 203]][: len(got)]  # what came before is intact
    _no_workers_left()
    # the graph can be loaded again (the item is not deadly in the main process: 0 workers)
    again = audio_nodes(source, batch_size=2, policy=policy, sample_rate=SR)
    assert sum(len(b) for b in nodes.Loader(again)) == 12


@pytest.mark.parametrize("how", [signal.SIGKILL, "exit"], ids=["SIGKILL", "exit"])
def test_dataloader_and_webloader_raise_for_a_dead_worker(how: int | str, tmp_path: Any) -> None:
    source = Deadly(8, index=3, how=how)
    ds = AudioDataset(source, policy="skip", sample_rate=SR)
    loaders: dict[str, Any] = {
        "DataLoader": DataLoader(
            ds, batch_size=2, collate_fn=ds.collate, num_workers=2, multiprocessing_context="fork"
        ),
        "WebLoader": wds.WebLoader(
            wds.DataPipeline(lambda: iter(range(8)), wds.map(lambda i: ds[i]), _batches),
            batch_size=None,
            num_workers=1,
            multiprocessing_context="fork",
        ),
    }
    for name, loader in loaders.items():
        start = time.monotonic()
        _torch_raises_for_the_dead_worker(loader)
        assert time.monotonic() - start < 20, name
        _no_workers_left()


def _torch_raises_for_the_dead_worker(loader: Any) -> None:
    """An epoch of ``loader`` (torch's ``DataLoader`` or a subclass) raises torch's error for
    the dead worker; then the iterator is collected at once, which stops and reaps its workers.

    torch's process-wide SIGCHLD handler raises that error asynchronously, in whatever Python code
    the main thread runs when the worker dies. In a CI run it landed in a weakref callback of
    torch.compile's, run by a garbage collection, and became an "unraisable" (which pytest keeps
    to the test's end); the loader then finds the death only on its own 5 s poll, and that test
    failed. So the collector is run before and held off during the epoch (nothing from earlier
    tests is collected meanwhile), and the handler is set aside from the error on (the
    survivors' exits would raise the same way, inside the iterator's ``__del__``) until the
    workers are reaped."""
    collecting = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid\(?s?\)? ?\d+"):
            try:
                for _ in loader:
                    pass
            finally:  # the loader has installed torch's handler by now
                handler = signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    finally:
        if collecting:
            gc.enable()
    try:
        gc.collect()  # the iterator: its __del__ stops its workers and unregisters them
    finally:
        signal.signal(signal.SIGCHLD, handler)


def _batches(samples: Any) -> Any:
    collate = WaveCollate(sample_rate=SR)
    batch: list[Any] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == 2:
            yield collate(batch)
            batch = []


@pytest.mark.parametrize("policy", ["skip", "raise"])
def test_finished_workers_are_reaped_at_the_end_of_each_epoch(policy: str) -> None:
    items = [(np.full(100 + i, 0.1, np.float32), SR) for i in range(9)]
    graph = _two_workers(items, policy)
    loader = nodes.Loader(graph)
    for _ in range(2):
        it = iter(loader)
        first = next(it)
        assert len(_workers()) == 2  # the two workers, running
        rest = list(it)
        assert len(first) + sum(len(b) for b in rest) == 9
        assert _workers() == []  # reaped when the epoch ended: no zombie until the next
    # stopped mid-epoch and resumed from its state: the same workers' cost, nothing lost
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    del it
    resumed = nodes.Loader(_two_workers(items, policy))
    resumed.load_state_dict(state)
    assert sum(len(b) for b in resumed) == 7
    loader = resumed = graph = None  # type: ignore[assignment]
    gc.collect()  # a loader left mid-epoch stops its workers when it is collected
    _no_workers_left()


def test_a_worker_error_names_the_sample_and_keeps_its_reason() -> None:
    from nnaudio_data.io import SampleError

    items = [(np.full(300, 0.1, np.float32), SR), (np.full(300, np.nan, np.float32), SR)]
    graph = audio_nodes(
        items, batch_size=2, num_workers=2, multiprocessing_context="fork", sample_rate=SR
    )
    with pytest.raises(SampleError, match="sample '1' holds NaN") as info:
        list(nodes.Loader(graph))
    assert info.value.reason == "non_finite" and info.value.key == "1"  # the error itself
    _no_workers_left()
