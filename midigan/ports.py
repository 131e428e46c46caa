"""MIDI ports: list them, open an output (virtual or existing), open a clock input.

A thin layer over python-rtmidi. Messages are plain byte lists ([0x90, 60, 100]),
never mido objects: building those costs microseconds the player would rather
spend on time. Every port is a context manager with panic() and reset(); the
player releases its own notes (and sends CC 123) before a port closes.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from pathlib import Path

APIS = ("auto", "alsa", "jack", "coremidi", "winmm")
# rtmidi's API constants, by the names the CLI uses (rtmidi.API_* values).
_API_IDS = {"coremidi": 1, "alsa": 2, "jack": 3, "winmm": 4}

ALL_NOTES_OFF = 123
SUSTAIN = 64  # the sustain pedal's controller
ALL_SOUND_OFF = 120
RESET_CONTROLLERS = 121


class PortNotFound(ValueError):
    """No port of that name."""


class PortError(OSError):
    """A port that exists but cannot be opened (busy, refused)."""


class APIUnavailable(RuntimeError):
    """A MIDI API that is not compiled in or whose server is not running."""


def check_channel(channel) -> int:
    """A MIDI channel 1..16 (as users count), or ValueError naming the value."""
    if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16:
        raise ValueError(f"MIDI channel {channel!r} is invalid (1..16)")
    return channel


def default_api() -> str:
    if sys.platform.startswith("linux"):
        return "alsa"
    if sys.platform == "darwin":
        return "coremidi"
    if sys.platform.startswith("win"):
        return "winmm"
    return "jack"


def resolve_api(api: str = "auto") -> str:
    api = (api or "auto").lower()
    if api not in APIS:
        raise ValueError(f"unknown MIDI API {api!r} (one of {', '.join(APIS)})")
    return default_api() if api == "auto" else api


def compiled_apis() -> list[str]:
    """The APIs this python-rtmidi build has, by CLI name."""
    import rtmidi

    names = {v: k for k, v in _API_IDS.items()}
    return [names[a] for a in rtmidi.get_compiled_api() if a in names]


def _why_unavailable(api: str) -> str:
    if api == "alsa":
        return "the ALSA sequencer is not available (no /dev/snd/seq; load snd-seq, or use --api jack)"
    if api == "jack":
        return "no JACK server is running (start jackd, or pick another --api)"
    return f"the {api} MIDI API is not available"


class _quiet_stderr:
    """Silence fd 2 while ALSA/JACK libraries initialise: they print their own
    multi-line complaints, and we raise one clear line instead."""

    def __enter__(self):
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)


def _client(kind: str, api: str, client_name: str):
    """An rtmidi MidiIn/MidiOut on `api`, or APIUnavailable."""
    import rtmidi

    if api not in compiled_apis():
        raise APIUnavailable(f"MIDI API {api!r} is not compiled into python-rtmidi here "
                             f"(available: {', '.join(compiled_apis()) or 'none'})")
    # libjack would otherwise try to start a server itself (and print about it).
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    try:
        with _quiet_stderr():
            if kind == "out":
                return rtmidi.MidiOut(_API_IDS[api], client_name)
            return rtmidi.MidiIn(_API_IDS[api], client_name, queue_size_limit=8192)  # polled: room to wait
    except (rtmidi.RtMidiError, SystemError, RuntimeError):
        raise APIUnavailable(_why_unavailable(api)) from None


def _find(names: list[str], want: str, what: str) -> int:
    """Index of the port called `want`: exact name first, then a unique substring."""
    if want in names:
        return names.index(want)
    hits = [i for i, n in enumerate(names) if want.lower() in n.lower()]
    if len(hits) == 1:
        return hits[0]
    have = ", ".join(repr(n) for n in names) or "none"
    if hits:
        raise PortNotFound(f"{what} port name {want!r} is ambiguous (matches: "
                           f"{', '.join(repr(names[i]) for i in hits)})")
    raise PortNotFound(f"no MIDI {what} port named {want!r} (available: {have})")


def list_ports() -> dict[str, dict]:
    """{api: {"inputs": [...], "outputs": [...]}} or {api: {"error": why}} per compiled API."""
    out = {}
    for api in compiled_apis():
        try:
            mi, mo = _client("in", api, "midigan-list"), _client("out", api, "midigan-list")
        except APIUnavailable as e:
            out[api] = {"error": str(e)}
            continue
        try:
            out[api] = {"inputs": mi.get_ports(), "outputs": mo.get_ports()}
        finally:
            mi.delete()
            mo.delete()
    return out


class _Port:
    """What every output shares: send(), panic(), reset(), context management."""

    name = ""
    closed = False

    def send(self, msg) -> None:
        raise NotImplementedError

    def panic(self, channels=range(16)) -> None:
        """All sound off (CC 120) and all notes off (CC 123) on these 0-based channels."""
        for ch in channels:
            self.send([0xB0 | ch, ALL_SOUND_OFF, 0])
            self.send([0xB0 | ch, ALL_NOTES_OFF, 0])

    def reset(self, channels=range(16)) -> None:
        """All notes off and reset all controllers (sustain pedal up etc.)."""
        for ch in channels:
            self.send([0xB0 | ch, ALL_NOTES_OFF, 0])
            self.send([0xB0 | ch, RESET_CONTROLLERS, 0])

    def close(self) -> None:
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class OutputPort(_Port):
    """An rtmidi output: a virtual port other programs connect to, or an existing one."""

    def __init__(self, midiout, name: str, api: str, virtual: bool = False, client_name: str = ""):
        self._out, self.name, self.api = midiout, name, api
        self.virtual, self.client_name = virtual, client_name
        self._send = midiout.send_message

    def connected(self) -> bool | None:
        """Whether something reads this port; None where the API cannot tell (rtmidi's own
        JACK port, CoreMIDI). An existing port is a connection itself."""
        if not self.virtual:
            return True
        if self.api != "alsa":
            return None
        try:
            text = Path("/proc/asound/seq/clients").read_text()
        except OSError:
            return None
        return alsa_readers(text, self.client_name, self.name)

    def send(self, msg) -> None:
        self._send(msg)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.api == "jack":
            # JACK delivers from its process callback: give the last note-offs
            # a few periods to leave before the client goes away.
            time.sleep(0.02)
        try:
            self._out.close_port()
            if self.api == "jack":
                # rtmidi frees its ring buffer before closing the client: a process cycle
                # that began before the port went is let finish reading it first.
                time.sleep(0.01)
        finally:
            self._out.delete()


def alsa_readers(text: str, client: str, port: str) -> bool | None:
    """From /proc/asound/seq/clients: whether the port `port` of the client `client` sends
    to anyone ("Connecting To"); None if no such port is listed. ALSA lets two clients share
    a name: any of them connected counts."""
    found = out = in_client = in_port = False
    for line in text.splitlines():
        s = line.strip()
        name = s.split('"')[1] if s.count('"') >= 2 else None
        if line.startswith("Client"):
            in_client, in_port = name == client, False
        elif s.startswith("Port"):
            in_port = in_client and name == port
            found = found or in_port
        elif s.startswith("Connecting To:") and in_port:
            out = True
    return out if found else None


def wait_for_reader(port, stopped, *, poll: float = 0.05, sleep=time.sleep) -> bool:
    """Hold until something reads `port` (its connected() is True), so a patchbay or a DAW
    that connects a moment after the port appears hears the first notes. False if `stopped()`
    came first; True at once where the port cannot tell (connected() None or missing)."""
    check = getattr(port, "connected", None)
    while check is not None and check() is False:
        if stopped():
            return False
        sleep(poll)
    return True


class MemoryPort(_Port):
    """An output that records (time, message tuple) pairs: the player's tests use it."""

    reader = True  # connected(): tests set it

    def connected(self) -> bool | None:
        return self.reader

    def __init__(self, now=time.perf_counter, name: str = "memory"):
        self.now, self.name = now, name
        self.messages: list[tuple[float, tuple[int, ...]]] = []

    def send(self, msg) -> None:
        if self.closed:
            raise PortError(f"port {self.name!r} is closed")
        self.messages.append((self.now(), tuple(msg)))


def open_output(name: str | None = None, *, virtual: bool = True, api: str = "auto",
                client_name: str = "midigan") -> OutputPort:
    """Open a MIDI output: a virtual port called `name` (default 'midigan'), or,
    with virtual=False, the existing port called `name`.

    JACK goes through jackport.JackOutput (sample-accurate) where JACK-Client is
    installed: with api 'jack', and with 'auto' on Linux when a JACK server runs.
    Elsewhere, or with MIDIGAN_JACK_BACKEND=rtmidi, python-rtmidi's port.
    """
    import rtmidi

    want = (api or "auto").lower()
    if want == "jack" or (want == "auto" and sys.platform.startswith("linux")):
        from .jackport import open_jack_output

        port = open_jack_output(name or "midigan", virtual=virtual, client_name=client_name,
                                explicit=want == "jack")
        if port is not None:
            return port
    api = resolve_api(api)
    if virtual and api == "winmm":
        raise APIUnavailable("Windows cannot create virtual MIDI ports: create one with loopMIDI "
                             "and pass --port NAME")
    mo = _client("out", api, client_name)
    try:
        if virtual:
            name = name or "midigan"
            with _quiet_stderr():
                mo.open_virtual_port(name)
            return OutputPort(mo, name, api, virtual=True, client_name=client_name)
        if not name:
            raise PortNotFound("no output port name given")
        names = mo.get_ports()
        i = _find(names, name, "output")
        with _quiet_stderr():
            mo.open_port(i, client_name)
        if api == "jack":
            # JACK makes the connection at a later process cycle: a note sent
            # before then is lost, so give it a few periods.
            time.sleep(0.01)
        return OutputPort(mo, names[i], api)
    except (rtmidi.RtMidiError, SystemError) as e:
        mo.delete()
        what = f"virtual port {name!r}" if virtual else f"port {name!r}"
        raise PortError(f"cannot open MIDI output {what} on {api} (busy or refused: "
                        f"{str(e).strip() or type(e).__name__})") from None
    except BaseException:
        mo.delete()
        raise


class Inbox:
    """(arrival time, message) pairs filled by another thread, taken by the player's."""

    def __init__(self):
        self._inbox: deque = deque()
        self._wake = threading.Event()

    def put(self, item) -> None:
        self._inbox.append(item)
        self._wake.set()

    def take(self) -> list:
        """Everything received so far, oldest first."""
        self._wake.clear()
        out = []
        while self._inbox:
            out.append(self._inbox.popleft())
        return out

    def pending(self) -> bool:
        return bool(self._inbox)

    def wait(self, timeout: float) -> None:
        """Sleep up to `timeout` seconds, waking early when a message arrives."""
        self._wake.wait(timeout)


class ClockInput(Inbox):
    """A MIDI input for --sync and --listen: keeps (arrival time, message) pairs for the player.

    Read by a polling thread, never an rtmidi callback: on JACK, rtmidi calls a callback on
    the process thread, which then waits for the GIL, and closing the port while a clock
    streamed in hung or crashed the process (tests/test_live_jack.py, closing mid-clock).
    The arrival time anchors the beat grid, so it comes from rtmidi's deltas (taken as each
    message came in), anchored on the player's clock: a message arrived no later than it
    was polled, so the chain is pulled back to any poll that came before it. It creeps
    forward by `CREEP` of each delta, so an input clock slower than ours cannot run ahead.
    """

    POLL = 0.0005  # seconds between looks when nothing came: what a message may wait
    CREEP = 1e-3

    def __init__(self, midiin, name: str, now=time.perf_counter):
        super().__init__()
        self._in, self.name, self.now = midiin, name, now
        # Nothing dropped by rtmidi: each delta counts from the message before, kept or not.
        midiin.ignore_types(sysex=False, timing=False, active_sense=False)
        self._last = None  # the previous message's arrival time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="midigan-input", daemon=True)
        self._thread.start()

    def receive(self, msg, delta: float, polled: float) -> None:
        """Keep `msg` (unless sysex or active sensing) at the arrival its delta gives."""
        t = polled if self._last is None else min(polled, self._last + delta * (1 + self.CREEP))
        self._last = t
        if msg and msg[0] not in (0xF0, 0xFE):
            self.put((t, msg))

    def _poll(self) -> None:
        get = self._in.get_message
        while not self._stop.is_set():
            event = get()
            if event is None:
                self._stop.wait(self.POLL)
            else:
                self.receive(event[0], event[1], self.now())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        try:
            self._in.close_port()
        finally:
            self._in.delete()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def open_input(name: str = "virtual", *, api: str = "auto", client_name: str = "midigan-sync",
               now=time.perf_counter, exclude: tuple[str, ...] = (),
               virtual_name: str = "midigan clock") -> ClockInput:
    """Open an input (a clock, or what --listen hears): the existing input port `name`, or
    with name 'virtual' a virtual input called `virtual_name` for the DAW to send to.
    Ports whose names start with one of `exclude` (our own) are never matched."""
    import rtmidi

    api = resolve_api(api)
    if name == "virtual" and api == "winmm":
        raise APIUnavailable("Windows cannot create virtual MIDI ports: create one with loopMIDI "
                             "and pass --sync NAME")
    # Read (and rtmidi told to drop nothing) before the port opens: a Start sent the
    # instant it appears is not lost.
    inbox = ClockInput(_client("in", api, client_name), virtual_name, now)
    mi = inbox._in
    try:
        with _quiet_stderr():
            if name == "virtual":
                mi.open_virtual_port(virtual_name)
                return inbox
            names = mi.get_ports()
            ours = tuple(exclude)
            mine = [n for n in names if not (ours and n.startswith(ours))]
            i = names.index(mine[_find(mine, name, "input")])
            mi.open_port(i, "clock")
        inbox.name = names[i]
        return inbox
    except (rtmidi.RtMidiError, SystemError) as e:
        inbox.close()
        raise PortError(f"cannot open MIDI input {name!r} on {api} (busy or refused: "
                        f"{str(e).strip() or type(e).__name__})") from None
    except BaseException:
        inbox.close()
        raise
