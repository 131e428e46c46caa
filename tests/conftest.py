"""Shared fixtures: small MIDI corpora written on the fly, a tiny trained model, the shared corpus."""
from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPUS = ROOT.parent / "shared" / "corpus" / "piano-midi-de"


@pytest.fixture(autouse=True)
def _default_sigint():
    """Python's own Ctrl-C handler for every test, even when pytest was started with SIGINT
    ignored (as `nohup cmd &` does): the signal tests check that it is restored."""
    old = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own corpus cache: tests never see (or pollute) the user's."""
    monkeypatch.setenv("MIDIGAN_CACHE", str(tmp_path_factory.mktemp("cache")))


def write_piece(path: Path, pitches, step_ticks: int = 120, channel: int = 0) -> Path:
    import mido

    mf = mido.MidiFile(type=1, ticks_per_beat=480)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    for i, p in enumerate(pitches):
        tr.append(mido.Message("note_on", note=int(p), velocity=80, channel=channel,
                               time=0 if i == 0 else step_ticks // 2))
        tr.append(mido.Message("note_off", note=int(p), velocity=0, channel=channel, time=step_ticks // 2))
    path.parent.mkdir(parents=True, exist_ok=True)
    mf.save(str(path))
    return path


def make_corpus(folder: Path, pieces: int = 4, notes: int = 200) -> Path:
    """A few melodic pieces (scales and arpeggios in different keys)."""
    for k in range(pieces):
        pattern = [0, 2, 4, 5, 7, 9, 11, 12, 11, 9, 7, 5, 4, 2] if k % 2 else [0, 4, 7, 12, 7, 4]
        base = 55 + 2 * k
        write_piece(folder / f"piece{k}.mid", [base + pattern[i % len(pattern)] for i in range(notes)])
    return folder


@pytest.fixture
def tiny_corpus(tmp_path) -> Path:
    return make_corpus(tmp_path / "corpus")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny event model (and its critic) trained for a few steps and exported: (checkpoint, onnx)."""
    pytest.importorskip("torch")
    from midigan.training.export import export_onnx
    from midigan.training.train import run_training

    base = tmp_path_factory.mktemp("tinyrun")
    os.environ.setdefault("MIDIGAN_CACHE", str(base / "cache"))
    corpus = make_corpus(base / "corpus")
    ckpt = run_training(corpus, base / "run", config="tiny", progress=False)
    onnx_path = base / "tiny.onnx"
    export_onnx(ckpt, onnx_path, command="test")
    return ckpt, onnx_path


@pytest.fixture
def shared_corpus() -> Path:
    if not SHARED_CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS}")
    return SHARED_CORPUS


_JACKD_LOG: list = []  # the session server's log file, once started (shown when a JACK test fails)


@contextlib.contextmanager
def running_jackd(name: str, log: Path):
    """A private jackd (dummy driver, 48 kHz, period 64) called `name`, stopped on exit; skips
    the test when jackd is missing or does not come up.

    Its output goes to the file `log`, never a pipe: on a loaded machine jackd prints an error
    line per late cycle, and once a pipe nobody read held 64 KiB of them the server blocked in
    write() and every client stalled (the whole graph, then the suite, hung).
    -S (synchronous): the server waits for every client each cycle, so a busy test machine
    delays a cycle instead of dropping its MIDI in an xrun, which would read as a lost note-off.
    -t 2000: on a loaded machine a client may take far longer than a period; the server waits
    2 s for it (500 ms by default) before giving the cycle up.
    """
    import shutil
    import subprocess
    import time

    if not shutil.which("jackd"):
        pytest.skip("jackd is not installed (Debian: apt-get install jackd2 jack-tools)")
    with open(log, "w") as out:
        proc = subprocess.Popen(["jackd", "--no-realtime", "-S", "-t", "2000", "-n", name,
                                 "-d", "dummy", "-r", "48000", "-p", "64"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                pytest.skip(f"jackd did not start: {log.read_text().strip()[-300:]}")
            if subprocess.run(["jack_lsp", "-s", name], capture_output=True).returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.skip("jackd did not come up within 10 s")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def jack_server(tmp_path_factory):
    """A private JACK server (running_jackd) for the live tests: its name, rate and period.

    Own server name, so it never meets a desktop's JACK or another test run;
    JACK_DEFAULT_SERVER points this process and its subprocesses at it.
    """
    name = f"midigan-test-{os.getpid()}"
    log = tmp_path_factory.mktemp("jackd") / "jackd.log"
    saved = {k: os.environ.get(k) for k in ("JACK_DEFAULT_SERVER", "JACK_NO_START_SERVER")}
    try:
        with running_jackd(name, log):
            _JACKD_LOG.append(log)
            os.environ["JACK_DEFAULT_SERVER"] = name
            os.environ["JACK_NO_START_SERVER"] = "1"
            yield {"name": name, "rate": 48000, "period": 64}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def relabel_onnx(src, dst, **changes):
    """Copy an ONNX model with its metadata changed (None deletes a key)."""
    onnx = pytest.importorskip("onnx")
    m = onnx.load(str(src))
    props = {p.key: p.value for p in m.metadata_props}
    for k, v in changes.items():
        if v is None:
            props.pop(k, None)
        else:
            props[k] = v
    del m.metadata_props[:]
    onnx.helper.set_model_props(m, props)
    onnx.save(m, str(dst))
    return dst


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing JACK test shows the server's last lines (late cycles, clients it dropped)."""
    outcome = yield
    report = outcome.get_result()
    jack = item.get_closest_marker("jack") is not None or "jack_server" in getattr(item, "fixturenames", ())
    if report.failed and _JACKD_LOG and jack:
        lines = _JACKD_LOG[-1].read_text(errors="replace").splitlines()
        report.sections.append(("jackd log (last 30 of %d lines)" % len(lines), "\n".join(lines[-30:])))
