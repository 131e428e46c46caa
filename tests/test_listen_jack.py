"""`midigan play --listen virtual` for real, on a private JACK server (the jack_server fixture):
a second client plays a phrase into 'midigan in', midigan answers on its output, a recorder
client receives it; after SIGINT (a heard key still down) nothing is left sounding."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from midigan.runtime import Generator
from tests.test_live_jack import Recorder, counts, play_cmd

ROOT = Path(__file__).resolve().parent.parent
PHRASE = [60, 64, 67, 72, 67, 64]


@pytest.fixture(scope="module")
def event_model(request):
    """The shipped model where it is an event model (listening needs one), else the tiny one."""
    shipped = ROOT / "export" / "default.onnx"
    if shipped.is_file() and Generator(shipped).timed:
        return shipped
    return request.getfixturevalue("tiny_run")[1]


# The caller, in its own process (a second JACK client in this one, beside the recorder's
# callback, can stall or crash): plays the phrase on channel 2, then at each line on stdin
# holds key 50 down, then leaves.
CALLER = r"""
import subprocess, sys, time, rtmidi
out = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, "midigan-caller")
deadline = time.monotonic() + 30
while not any("midigan in" in n for n in out.get_ports()):
    if time.monotonic() > deadline:
        sys.exit(f"no 'midigan in' port: {out.get_ports()}")
    time.sleep(0.05)
out.open_port([i for i, n in enumerate(out.get_ports()) if "midigan in" in n][0])


def connected():  # JACK makes the connection at a later cycle: later still on a busy machine
    lines = subprocess.run(["jack_lsp", "-c"], capture_output=True, text=True).stdout.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("midigan-caller"):
            for below in lines[i + 1:]:
                if not below.startswith((" ", "\t")):
                    break
                if "midigan in" in below:
                    return True
    return False


while not connected():
    if time.monotonic() > deadline:
        sys.exit("the caller's port was never connected to 'midigan in'")
    time.sleep(0.02)
time.sleep(0.05)
for p in map(int, sys.argv[1:]):
    out.send_message([0x91, p, 90]); time.sleep(0.12); out.send_message([0x81, p, 0]); time.sleep(0.03)
print("played", flush=True)
sys.stdin.readline()
out.send_message([0x91, 50, 80])
sys.stdin.readline()
out.close_port(); time.sleep(0.01); out.delete()  # a cycle in flight done with rtmidi's ring buffer
"""


def wait_for(rec, pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(pred(m) for _t, m, _w in rec.events):
            return True
        time.sleep(0.01)
    return False


@pytest.mark.jack
@pytest.mark.parametrize("backend", ["", "rtmidi"])  # JACK-Client (the input read in its callback); rtmidi
def test_answers_a_phrase_played_into_midigan_in(jack_server, event_model, backend):
    proc = subprocess.Popen(play_cmd(event_model, "--listen", "virtual", "--mode", "answer", "--silence", "1",
                                     "--answer-bars", "2", "--thru", "--seed", "3"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, MIDIGAN_JACK_BACKEND=backend))
    rec = Recorder()
    call = None
    try:
        rec.connect_to("midigan:midigan", timeout=30)
        call = subprocess.Popen([sys.executable, "-c", CALLER, *map(str, PHRASE)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert call.stdout.readline().strip() == "played", call.stderr.read()
        if not wait_for(rec, lambda m: m[0] == 0x90 and m[2] > 0, 10):
            proc.send_signal(signal.SIGINT)
            heard = [m for _t, m, _w in rec.events][:8]
            pytest.fail(f"no answer arrived; recorded {heard}; midigan said: {proc.communicate(timeout=15)[1][-800:]}")
        call.stdin.write("hold\n")  # a key down while the answer plays: echoed, never let go
        call.stdin.flush()
        assert wait_for(rec, lambda m: m[:2] == (0x91, 50), 10), "the held key was not echoed"
        proc.send_signal(signal.SIGINT)
        _stdout, err = proc.communicate(timeout=15)
        time.sleep(0.2)
    finally:
        if call is not None and call.poll() is None:
            try:  # let it close its JACK client: killed mid-cycle, it stalls the -S server 5 s
                call.communicate("\n\n", timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                pass
        for p in (proc, call):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        rec.close()
    assert proc.returncode == 130, err
    ev = rec.events
    heard = [m[1] for _t, m, _w in ev if m[0] == 0x91 and m[2] > 0]
    assert heard == PHRASE + [50]  # every heard note echoed once, in order
    assert sum(m[0] == 0x90 and m[2] > 0 for _t, m, _w in ev) >= 1
    tail = "\n".join(f"{t:.4f} {m}" for t, m, _w in ev[-12:])  # a str: pytest would cut a list short
    assert not any(counts(ev, channel=0).values()) and not any(counts(ev, channel=1).values()), tail
    assert ev[-1][1] == (0xB0, 123, 0)
