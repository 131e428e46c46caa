"""The xrun floor of this machine for any Python JACK client: a trivial JACK-Client whose
process callback only clears its MIDI buffer, beside `jack_midi_dump`, on a private dummy
server (as bench/jack.py runs midigan). If this client sees xruns at a period, midigan's
output (a Python callback too) can do no better there.

    python bench/xruns.py [--periods 64 256 1024] [--seconds 10] [--busy]

--busy adds a Python thread doing numpy work beside the callback (as midigan's phrase
producer does). Prints the xruns each period saw and the load average; no asserts. Needs
jackd, jack_midi_dump (Debian: jackd2 jack-tools) and JACK-Client.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

# bench/jack.py's server helpers, loaded by path; and bench/ off the path, where jack.py
# would shadow the JACK-Client package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
_spec = importlib.util.spec_from_file_location("bench_jack", Path(__file__).with_name("jack.py"))
bench_jack = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_jack)


def count_xruns(period: int, seconds: float, busy: bool) -> tuple[int | None, str]:
    """(xruns the trivial client saw in `seconds`, the server's mode); None if jackd did not start."""
    name = f"mgx{os.getpid()}p{period}"
    server = bench_jack.start_jack(name, period)
    if server is None:
        return None, ""
    os.environ.update(JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    dump = subprocess.Popen(["jack_midi_dump", "-a", "xrun-dump"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        import jack

        client = jack.Client("xrun-probe")
    except BaseException:
        dump.send_signal(signal.SIGINT)  # it closes its JACK client; SIGTERM stalls a -S server 5 s
        bench_jack.stop(server)
        raise
    try:
        out = client.midi_outports.register("out")
        seen = [0]
        client.set_process_callback(lambda frames: out.clear_buffer())
        client.set_xrun_callback(lambda delay: seen.__setitem__(0, seen[0] + 1))
        client.activate()
        time.sleep(0.5)  # start-up is not counted
        seen[0] = 0
        stop = threading.Event()
        if busy:
            def work():
                while not stop.is_set():
                    np.random.rand(8, 100, 249).argmax(-1)
            threading.Thread(target=work, daemon=True).start()
        time.sleep(seconds)
        stop.set()
        return seen[0], server.mode
    finally:
        client.deactivate()
        client.close()
        dump.send_signal(signal.SIGINT)  # it closes its JACK client; SIGTERM stalls a -S server 5 s
        dump.wait(5)
        bench_jack.stop(server)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--periods", type=int, nargs="+", default=[64, 256, 1024], help="JACK periods (frames)")
    ap.add_argument("--seconds", type=float, default=10.0, help="how long each period is watched")
    ap.add_argument("--busy", action="store_true", help="a numpy thread works beside the callback")
    a = ap.parse_args()
    print(f"a trivial Python JACK client beside jack_midi_dump, {a.seconds:g} s a period, 48 kHz"
          f"{', a numpy thread busy' if a.busy else ''}; cpus {os.cpu_count()}")
    for period in a.periods:
        n, mode = count_xruns(period, a.seconds, a.busy)
        if n is None:
            print(f"{period:>6} jackd did not start")
            continue
        print(f"{period:>6} {n:>4} xruns  load {os.getloadavg()[0]:.2f}  (server {mode})", flush=True)


if __name__ == "__main__":
    main()
