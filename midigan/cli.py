"""The `midigan` command line: commands only; the work lives in the modules.

Domain errors are plain ValueError/OSError subclasses raised by the library and
turned into one-line click errors here, so a user never sees a traceback.
"""
from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from .files import write_atomic
from .music import SCALES


def friendly(fn):
    """Turn library errors into a one-line `Error: ...` and exit status 1."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except click.BadParameter as e:  # checked in the command body: one line, no usage dump
            raise click.ClickException(e.format_message()) from None
        except click.ClickException:
            raise
        except (ValueError, OSError, RuntimeError) as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            if isinstance(e, OSError) and e.filename and str(e.filename) not in msg:
                msg = f"{msg}: {e.filename}"
            raise click.ClickException(msg) from None
        except ImportError as e:
            raise click.ClickException(f"{e.name or e} is not installed ({_extra_hint(e)})") from None
        except Exception as e:  # a bug of ours: still one line, unless asked for the traceback
            if os.environ.get("MIDIGAN_DEBUG"):
                raise
            raise click.ClickException(f"internal error: {type(e).__name__}: {e} "
                                       "(set MIDIGAN_DEBUG=1 for the traceback)") from None
    return wrapper


def _extra_hint(e: ImportError) -> str:
    name = (e.name or "").split(".")[0]
    if name in ("torch", "onnx", "tqdm", "onnxscript"):
        return "training, export and evaluate need: pip install 'midigan[train]'"
    if name == "matplotlib":
        return "plots need: pip install 'midigan[plot]'"
    if name in ("sklearn", "symusic"):
        return "evaluate needs: pip install 'midigan[eval]'"
    if name == "jack":
        return "--sync jack needs: pip install 'midigan[jack]'"
    if name == "link":
        return "--sync link needs: pip install 'midigan[link]'"
    return "reinstall midigan"


class UsageErrorLine(click.ClickException):
    exit_code = 2  # the usual status for a usage error


class OneLineGroup(click.Group):
    """Usage errors in one line too (click prints the usage block above them otherwise)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
            raise UsageErrorLine(e.format_message() + hint) from None


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="midigan")
def main():
    """Piano ideas from an LSTM-GAN, written to MIDI files or played live into a DAW."""


# ------------------------------------------------------------------ offline generation

def steering_options(fn):
    """The sampling steers `generate` and `play` share, each overriding the preset."""
    opts = [
        click.option("--temperature", type=float, default=None, help="Sampling temperature, overriding the preset."),
        click.option("--low", type=int, default=None, help="Lowest MIDI key the model may sample (a mask), overriding the preset."),
        click.option("--high", type=int, default=None, help="Highest MIDI key the model may sample (a mask), overriding the preset."),
        click.option("--pedal", type=click.Choice(["off", "bar", "bass"]), default=None,
                     help="Sustain pedal (CC 64): re-pedal at each bar or each new bass note, overriding the preset."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


@main.command()
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default="midigan.mid",
              show_default=True, help="MIDI file to write.")
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="ONNX generator (default: the shipped export/default.onnx).")
@click.option("--count", type=int, default=None,
              help="Phrases (of the model's sequence length) to generate: one continuous line, as `play` plays "
                   "it [default: 1].")
@click.option("--bars", type=int, default=None,
              help="Generate this many 4/4 bars instead of --count phrases (after --prime's last bar line), "
                   "notes held over the end cut there: a clip that loops.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same file).")
@click.option("--preset", default="piano", show_default=True, help="Preset name or TOML path.")
@click.option("--bpm", type=float, default=None, help="Tempo, overriding the preset.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Also draw a piano roll PNG here.")
@click.option("--candidates", type=int, default=None,
              help="Phrases the model's critic chooses among for each one kept (1 = no choice) [default: the model's].")
@click.option("--prime", "prime_file", type=click.Path(dir_okay=False), default=None,
              help="Continue this MIDI file: the model hears it first; the output holds it, then the "
                   "continuation, in its tempo (at its end).")
@click.option("--prime-bars", type=int, default=None,
              help="With --prime: only its last N bars (4/4) are heard and written [default: all of it].")
@click.option("--key", default=None, metavar="NAME|auto",
              help="Key the notes keep to (C, F#, Bb, ...), overriding the preset; 'auto' (with --prime): "
                   "the prime's key, estimated, and its mode as the scale.")
@click.option("--scale", type=click.Choice(sorted(SCALES)), default=None,
              help="Scale of the key the notes keep to, overriding the preset (and --key auto's mode).")
@steering_options
@friendly
def generate(output, model, count, bars, seed, preset, bpm, plot, candidates, prime_file, prime_bars,
             key, scale, temperature, low, high, pedal):
    """Generate piano music into a MIDI file (or continue one: --prime)."""
    from .arrange import Note, phrases, take_until, to_midi_file
    from .music import BEATS_PER_BAR
    from .presets import load_preset
    from .runtime import Generator

    if count is not None and bars is not None:
        raise click.BadParameter("give --count or --bars, not both", param_hint="--bars")
    if count is not None and count < 1:
        raise click.BadParameter(f"must be at least 1, got {count}", param_hint="--count")
    if bars is not None and bars < 1:
        raise click.BadParameter(f"must be at least 1, got {bars}", param_hint="--bars")
    count = 1 if count is None and bars is None else count
    if seed < 0:
        raise click.BadParameter(f"must be 0 or more, got {seed}", param_hint="--seed")
    _check_candidates(candidates)
    if prime_bars is not None and (prime_file is None or prime_bars < 1):
        raise click.BadParameter("needs --prime, and at least 1 bar", param_hint="--prime-bars")
    if key == "auto" and prime_file is None:
        raise click.BadParameter("'auto' needs notes to hear: --prime FILE", param_hint="--key")
    prime, changes = None, {}
    if prime_file:
        from .prime import key_of, key_preset_values, read_prime

        prime = read_prime(prime_file, prime_bars)
        changes["bpm"] = prime.bpm
        if key == "auto":
            est = key_of(prime.notes)
            changes.update(key_preset_values(est))
            click.echo(f"key: {est.name} (estimated from the prime)")
    if key not in (None, "auto"):
        changes["key"] = key
    if bpm is not None:
        changes["bpm"] = bpm
    if scale is not None:
        changes["scale"] = scale
    pr = _steer(load_preset(preset), temperature=temperature, low=low, high=high, pedal=pedal, **changes)
    gen = Generator(model)
    # The stream `play` uses: each phrase continues the last (LSTM state, noise walk).
    extra = {} if prime is None else {"prime": prime.notes, "start_at": prime.end}
    stream = phrases(gen, pr, seed=seed, candidates=candidates, **extra)
    timed = gen.timed and pr.timing == "model"  # otherwise the preset's rhythm, from beat 0
    bar_after_prime = 0.0 if prime is None else -(-prime.end // BEATS_PER_BAR) * BEATS_PER_BAR
    if bars is not None:
        notes = take_until(stream, (bar_after_prime if timed else 0.0) + bars * BEATS_PER_BAR)
    else:
        notes = [n for _ in range(count) for n in next(stream)[0]]
    head = []
    if prime is not None:
        if not timed:  # move the preset's rhythm after the prime
            shift = bar_after_prime
            notes = [Note(n.start + shift, n.duration, n.pitch, n.velocity) for n in notes]
        head = [Note(float(s), float(d), int(p), int(v)) for p, s, d, v in prime.notes]
    mf = to_midi_file(head + notes, pr)
    write_atomic(Path(output), lambda p: mf.save(str(p)))
    what = (f"{len(head)} notes of {prime_file} (bars {prime.first_bar}-{prime.first_bar + prime.bars - 1}), "
            f"then " if prime is not None else "")
    length = f"{bars} bars" if bars is not None else f"{count} phrase(s)"
    click.echo(f"wrote {output}: {what}{length}, {len(notes)} notes, "
               f"{mf.length:.1f} s at {pr.bpm:g} BPM ({pr.name})")
    if plot:
        from .plots import piano_roll
        title = f"{Path(gen.path).name} seed {seed}" + (f", continuing {Path(prime_file).name}" if prime else "")
        write_atomic(Path(plot), lambda p: piano_roll(head + notes, p, title=title,
                                                      mark=prime.end if prime is not None else None))
        click.echo(f"wrote {plot}")


@main.command()
@click.argument("model", type=click.Path(dir_okay=False), required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
@friendly
def info(model, as_json):
    """Show a model's metadata."""
    from .runtime import default_model_path, read_metadata

    path = model or default_model_path()
    meta = read_metadata(path)
    if as_json:
        click.echo(json.dumps(meta, indent=2, sort_keys=True))
        return
    click.echo(f"{path} ({os.path.getsize(path) / 1e6:.2f} MB)")
    width = max(len(k) for k in meta)
    for k in sorted(meta):
        click.echo(f"  {k:<{width}}  {meta[k]}")


@main.command("presets")
@friendly
def presets_cmd():
    """List the shipped presets."""
    from .presets import list_presets

    for p in list_presets():
        click.echo(f"{p.name:<10} {p.bpm:>5g} BPM  step {p.step:<5} {p.key:>2} {p.scale:<15} {p.description}")


# ------------------------------------------------------------------ live MIDI

@main.command()
@click.option("--model", type=click.Path(dir_okay=False), default=None,
              help="ONNX generator (default: the shipped export/default.onnx).")
@click.option("--preset", default="piano", show_default=True, help="Preset name or TOML path.")
@click.option("--bpm", type=float, default=None, help="Tempo, overriding the preset (a --sync clock overrides both).")
@click.option("--bars", type=int, default=None, help="Stop after this many 4/4 bars (default: play until Ctrl-C).")
@click.option("--seed", type=int, default=None, help="Random seed (default: a new one each run, printed at start).")
@click.option("--channel", type=int, default=None, help="MIDI channel 1-16, overriding the preset.")
@click.option("--virtual", "virtual", default=None, metavar="NAME",
              help="Create a virtual output port called NAME [default: midigan].")
@click.option("--port", "port_name", default=None, metavar="NAME",
              help="Send to the existing output port NAME instead (e.g. a loopMIDI port on Windows).")
@click.option("--api", type=click.Choice(["auto", "alsa", "jack", "coremidi", "winmm"]), default="auto",
              show_default=True, help="MIDI API (auto: ALSA on Linux, CoreMIDI on macOS, WinMM on Windows).")
@click.option("--sync", "sync", default=None, metavar="PORT|jack|link",
              help="Follow MIDI clock (tempo, Start/Stop/Continue, song position) from input PORT; "
                   "'virtual' creates an input called 'midigan clock'; 'jack' follows JACK transport; "
                   "'link' joins an Ableton Link session (tempo, bar phase, start/stop).")
@click.option("--candidates", type=int, default=None,
              help="Phrases the model's critic chooses among for each one played (1 = no choice) [default: the model's].")
@click.option("--listen", "listen", default=None, metavar="PORT|virtual",
              help="Hear MIDI from input PORT ('virtual': an input called 'midigan in') and play along "
                   "(--mode); never midigan's own output.")
@click.option("--mode", type=click.Choice(["answer", "accompany", "off"]), default=None,
              help="With --listen: answer each phrase after --silence beats, accompany (play on, hearing "
                   "the input), or off (play alone); CC 20 switches it live [default: answer].")
@click.option("--silence", type=float, default=None,
              help="With --listen: beats of silence after a phrase before the answer [default: 2].")
@click.option("--answer-bars", type=int, default=None,
              help="With --listen: bars each answer lasts [default: 2].")
@click.option("--thru", is_flag=True, help="With --listen: echo what is heard to the output (off: it never is).")
@click.option("--chords", "chords", type=int, default=None, metavar="CHANNEL",
              help="With --listen: notes on this MIDI channel (1-16) of the input are a chord track: "
                   "held chords steer sampling toward their tones.")
@click.option("--key", default=None, metavar="NAME|auto",
              help="Key the notes keep to (C, F#, Bb, ...), overriding the preset; 'auto' (with --listen): "
                   "estimated from what is heard.")
@click.option("--scale", type=click.Choice(sorted(SCALES)), default=None,
              help="Scale of the key the notes keep to, overriding the preset.")
@steering_options
@click.option("--wait/--no-wait", default=None,
              help="Hold the first note until something is connected to the output [default: on for a virtual port].")
@click.option("--quiet", is_flag=True, help="No status line.")
@friendly
def play(model, preset, bpm, bars, seed, channel, virtual, port_name, api, sync, candidates, quiet,
         listen, mode, silence, answer_bars, thru, chords, key, scale, temperature, low, high, pedal, wait):
    """Play generated piano live on a MIDI port until Ctrl-C (or --bars); --listen: play along."""
    from .ports import check_channel
    from .presets import load_preset
    from .stopping import StopOnSignals

    hear = _listen_options(listen, mode, silence, answer_bars, thru, chords, key)
    if virtual and port_name:
        raise click.UsageError("use either --virtual NAME or --port NAME, not both")
    _check_candidates(candidates)
    if bars is not None and bars < 1:
        raise click.BadParameter(f"must be at least 1, got {bars}", param_hint="--bars")
    if channel is not None:
        check_channel(channel)
    pr = _steer(load_preset(preset), bpm=bpm, channel=channel, key=None if key == "auto" else key, scale=scale,
                temperature=temperature, low=low, high=high, pedal=pedal)
    seed, takes = _take_seed(seed, quiet)
    # Ctrl-C or SIGTERM from here on only sets a flag: a signal during start-up ends the
    # command cleanly, and one during the release cannot cut it short.
    with StopOnSignals() as stop:
        reason, sent, port = _play(model, pr, bars, seed, virtual, port_name, api, sync, quiet, stop, candidates,
                                   hear, takes, port_name is None if wait is None else wait)
        lost = getattr(port, "undelivered", 0)
        if not quiet or lost:
            sys.stderr.write("\n")
            click.echo(_stopped_line(reason, sent, port, lost), err=True)
    if reason in ("SIGINT", "SIGTERM"):  # the shell's convention: 128 + the signal's number
        sys.exit(130 if reason == "SIGINT" else 143)
    if lost:
        sys.exit(1)


def _stopped_line(reason, sent, port, lost) -> str:
    if lost:  # the release among them, perhaps: never claim what did not leave
        return (f"stopped ({reason}): {sent} notes sent; the JACK server did not take the last {lost} "
                f"MIDI messages before the port closed: notes may be left sounding")
    return f"stopped ({reason}): {sent} notes sent, all released{_jack_report(port)}"


def _jack_report(port) -> str:
    """' (JACK: N messages late, M xruns)' after a run on the JACK-Client port that had any."""
    late, xruns = getattr(port, "late", 0), getattr(port, "xruns", 0)
    return f" (JACK: {late} messages late, {xruns} xruns)" if late or xruns else ""


def _check_candidates(candidates) -> None:
    from .runtime import MAX_CANDIDATES

    if candidates is not None and not 1 <= candidates <= MAX_CANDIDATES:
        raise click.BadParameter(f"must be 1-{MAX_CANDIDATES}, got {candidates}", param_hint="--candidates")


def _steer(pr, **changes):
    """The preset with the command line's overrides (None: keep); --pedal off means none."""
    from .presets import override

    if changes.get("pedal") == "off":
        changes["pedal"] = ""
    return override(pr, **changes)


def _take_seed(seed, quiet):
    """(seed, (new_take, on_take)): without --seed, a new seed now and for each clock Start
    (drawn while the take before plays; printed when its take begins, to replay it)."""
    def fresh():
        return int.from_bytes(os.urandom(4), "little") >> 1

    def on_take(s):
        if not quiet:
            click.echo(f"\nnew take: seed {s}", err=True)

    if seed is not None:
        return seed, (None, None)
    return fresh(), (fresh, on_take)


def _listen_options(listen, mode, silence, answer_bars, thru, chords, key) -> dict | None:
    """play's --listen options, checked: None without --listen."""
    if listen is None:
        given = [f for f, v in (("--mode", mode), ("--silence", silence), ("--answer-bars", answer_bars),
                                ("--thru", thru or None), ("--chords", chords)) if v is not None]
        if key == "auto":
            raise click.BadParameter("'auto' needs notes to hear: --listen PORT", param_hint="--key")
        if given:
            raise click.UsageError(f"{given[0]} needs --listen PORT")
        return None
    if chords is not None and not 1 <= chords <= 16:
        raise click.BadParameter(f"must be a MIDI channel 1-16, got {chords}", param_hint="--chords")
    return dict(port=listen, mode=mode or "answer", silence=2.0 if silence is None else silence,
                bars=2 if answer_bars is None else answer_bars, thru=thru, key_auto=key == "auto",
                chord_channel=chords)


def _listener(gen, pr, seed, hear, port, client, stack):
    """The ListenSource for --listen: its input opened (never our own output), its Listener."""
    from .listen import Listener, ListenSource
    from .ports import open_input

    lis = Listener(gen, pr, mode=hear["mode"], seed=seed, silence=hear["silence"], bars=hear["bars"],
                   key_auto=hear["key_auto"], chord_channel=hear["chord_channel"])
    if hasattr(port, "listen_input"):  # JACK-Client: read in the output's process callback, frame-stamped
        inbox = port.listen_input(hear["port"])
    else:  # never midigan's own output, whatever the name matches
        inbox = stack.enter_context(open_input(hear["port"], api=port.api, client_name=f"{client}-listen",
                                               exclude=(f"{client}:",), virtual_name="midigan in"))
    return ListenSource(lis, inbox, thru=hear["thru"]), inbox.name


def _status_writer(quiet):
    """The player's status line: rewritten in place on a terminal, one line per bar in a log."""
    if quiet:
        return None
    tty, last_bar = sys.stderr.isatty(), [None]

    def status(line):
        if tty:
            sys.stderr.write("\r" + line + "   ")
        else:
            bar = line.split("bar", 1)[1].split()[0] if "bar" in line else line
            if bar == last_bar[0]:
                return
            last_bar[0] = bar
            sys.stderr.write(line.strip() + "\n")
        sys.stderr.flush()
    return status


def _open_clock(sync, pr, port, client, stack):
    """What --sync follows: None, a shared timeline (jack, link) or a MIDI clock input."""
    from .ports import open_input

    if not sync:
        return None
    if _follows_timeline(sync):  # a shared timeline, polled (sync.py)
        from .sync import open_sync

        return stack.enter_context(open_sync(sync, bpm=pr.bpm, port=port))
    if hasattr(port, "clock_input"):  # read in the same JACK process callback, frame-stamped
        return port.clock_input(sync)
    return stack.enter_context(open_input(sync, api=port.api, exclude=(f"{client}:",)))  # never our own output


def _follows_timeline(sync) -> bool:
    """--sync jack or link: a shared timeline (sync.py), not a MIDI clock input."""
    return sync.lower() in ("jack", "link")


def _stop_hold(sync, clock, port) -> float:
    """Seconds each note waits after its tick: following MIDI clock on a port that sends at once,
    so that a Stop in a note's tick's place keeps it from sounding (player.HOLD_FOR_STOP); 0 for
    a scheduling port (it drops such a note itself) and for JACK transport and Link."""
    from .player import HOLD_FOR_STOP

    midi_clock = clock is not None and not _follows_timeline(sync)
    return HOLD_FOR_STOP if midi_clock and not hasattr(port, "send_at") else 0.0


def _wait_for_reader(port, stop, quiet) -> bool:
    """--wait: hold until something reads the port (saying so); False if stopped meanwhile."""
    from .ports import wait_for_reader

    if getattr(port, "connected", lambda: None)() is False and not quiet:
        click.echo(f"waiting for a connection to {port.name!r} (--no-wait plays at once)", err=True)
    return wait_for_reader(port, stop.is_set)


class _Background:
    """fn() on a thread of its own; result() waits for it and returns its value or raises its error."""

    def __init__(self, fn):
        import threading

        self._fn, self._value, self._error = fn, None, None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        try:
            self._value = self._fn()
        except BaseException as e:  # handed to the caller's thread, whatever it is
            self._error = e

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _play(model, pr, bars, seed, virtual, port_name, api, sync, quiet, stop, candidates, hear, takes, wait):
    """Open the model, the output, the clock and the listener; play until stopped."""
    import contextlib

    from .player import Player
    from .ports import open_output
    from .runtime import Generator

    client = virtual or "midigan"  # --virtual NAME names the client too
    with contextlib.ExitStack() as stack:
        # The model loads while the port opens: the port's calls wait on the MIDI or JACK
        # server, and the first note sounds that much sooner (bench/startup.py).
        loading = _Background(lambda: Generator(model))
        try:
            port = stack.enter_context(open_output(port_name or virtual or "midigan",
                                                   virtual=port_name is None, api=api, client_name=client))
        finally:
            gen = loading.result()  # a model error wins over a port error: it is the user's to fix first
        if candidates and candidates > 1 and gen.critic is None:
            raise click.BadParameter(f"{gen.path.name} has no critic to choose among candidates",
                                     param_hint="--candidates")
        if port.api == "jack" and not hasattr(port, "send_at") and not quiet:
            click.echo("notice: JACK-Client is not installed (pip install 'midigan[jack]'): python-rtmidi's "
                       "JACK port moves each note by up to one period", err=True)
        clock = _open_clock(sync, pr, port, client, stack)
        hold = _stop_hold(sync, clock, port)
        if not quiet:
            latency = (f", latency {port.latency * 1e3:.2f} ms ({port.period} frames)"
                       if hasattr(port, "latency") else f", latency {hold * 1e3:g} ms" if hold else "")
            click.echo(f"playing {pr.name} on {port.name!r} ({port.api}{latency}), seed {seed}"
                       + (f", following clock from {clock.name!r}" if clock else f", {pr.bpm:g} BPM")
                       + "; Ctrl-C stops", err=True)
        source = None
        if hear is not None:
            source, heard = _listener(gen, pr, seed, hear, port, client, stack)
            if not quiet:
                knobs = ", ".join(f"CC {n}: {k}" for k, n in source.listener.cc_names())
                click.echo(f"listening on {heard!r} ({hear['mode']}; {knobs})", err=True)
        if wait and not _wait_for_reader(port, stop, quiet):
            return getattr(stop, "reason", None) or "stopped", 0, port
        player = Player(port, gen, pr, seed=seed, bars=bars, sync=clock, realtime=True,
                        status=_status_writer(quiet), stop_event=stop, candidates=candidates,
                        new_take=takes[0], on_take=takes[1], source=source, hold=hold)
        return player.run(), player.sent, port


@main.command()
@friendly
def ports():
    """List the compiled MIDI APIs and the input and output ports of each."""
    from .ports import list_ports

    for api, info in list_ports().items():
        if "error" in info:
            click.echo(f"{api}: unavailable: {info['error']}")
            continue
        click.echo(f"{api}:")
        click.echo("  inputs (--sync):  " + (", ".join(info["inputs"]) or "none"))
        click.echo("  outputs (--port): " + (", ".join(info["outputs"]) or "none"))


# ------------------------------------------------------------------ corpus, training, export

@main.command()
@click.argument("folder", type=click.Path())
@click.option("--no-cache", is_flag=True, help="Parse every file again, ignoring the cache.")
@click.option("--strict", is_flag=True, help="Split problems (files a MAESTRO CSV does not list, ...) are errors.")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
@click.option("--show-skipped", is_flag=True, help="List every skipped file with its reason.")
@friendly
def corpus(folder, no_cache, strict, as_json, show_skipped):
    """Parse a folder of MIDI files and print its statistics."""
    from .corpus import display, load_corpus

    c = load_corpus(folder, use_cache=not no_cache, strict=strict)
    st = c.stats()
    if as_json:
        st["notices"] = c.notices
        st["skipped_files"] = [{"file": display(n), "reason": r} for n, r in c.skipped]
        st["performance_files"] = [display(n) for n in c.performances()]
        click.echo(json.dumps(st, indent=2))
        return
    click.echo(f"{st['files']} files: {st['parsed']} parsed, {st['skipped']} skipped; "
               f"{st['notes']} notes, {st['hours']} hours; "
               f"split {st['train_files']} train / {st['validation_files']} validation / {st['test_files']} test; "
               f"{st['dropped_out_of_range']} notes outside 21-108 dropped")
    for line in c.notices:
        click.echo(f"  {line}")
    perf = c.performances()
    if perf:
        click.echo(f"  {len(perf)} files look like performances at one nominal tempo (onsets off the "
                   f"1/24-beat grid; their beats are not meaningful), e.g. {display(perf[0])}")
    for n, r in (c.skipped if show_skipped else c.skipped[:10]):
        click.echo(f"  skipped {display(n)}: {r}")
    if not show_skipped and len(c.skipped) > 10:
        click.echo(f"  ... and {len(c.skipped) - 10} more (--show-skipped)")


@main.command()
@click.argument("folder", type=click.Path())
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Run folder: checkpoint.pt, log.csv and plots go here.")
@click.option("--config", "config", default=None,
              help="Named config (default, seed, tiny) or a TOML file [default: default; on --resume, the checkpoint's].")
@click.option("--seed", type=int, default=None, help="Random seed (overrides the config).")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt, exactly where it stopped.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Where to train.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@friendly
def train(folder, out, config, seed, resume, device, quiet):
    """Train the LSTM generator and discriminator on a folder of MIDI files."""
    from .training.train import run_training

    run_training(folder, out, config=config, seed=seed, resume=resume, device=device, progress=not quiet)


@main.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), required=True,
              help="ONNX file to write.")
@click.option("--temperature", default=None, metavar="T|ATTR=T,...",
              help="Recommended sampling temperature stored in the model: one for every attribute, or "
                   "per attribute, e.g. velocity=0.7 (step, pitch, duration, velocity) [default: the config's].")
@click.option("--candidates", type=int, default=None,
              help="Recommended phrases the critic chooses among [default: the config's].")
@click.option("--critic-temperature", type=float, default=None,
              help="Recommended critic temperature (0 = its best-scored phrase) [default: 0].")
@friendly
def export(checkpoint, output, temperature, candidates, critic_temperature):
    """Export a checkpoint's generator (and critic) to self-describing ONNX files."""
    from .training.export import export_onnx, parse_temperatures

    _check_candidates(candidates)
    if temperature is not None:
        try:
            temperature = parse_temperatures(temperature)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--temperature") from None
    if critic_temperature is not None and not 0 <= critic_temperature <= 100:
        raise click.BadParameter(f"must be 0-100, got {critic_temperature}", param_hint="--critic-temperature")
    diff, size = export_onnx(checkpoint, output, command=" ".join(["midigan"] + sys.argv[1:]),
                             sampling={"temperature": temperature, "candidates": candidates,
                                       "critic_temperature": critic_temperature})
    click.echo(f"wrote {output} ({size / 1e6:.2f} MB); torch vs onnxruntime max abs diff {diff:.2e}")


# ------------------------------------------------------------------ evaluation

@main.command()
@click.argument("source", type=click.Path())
@click.option("--reference", type=click.Path(), required=True,
              help="Corpus folder of real piano music; its --split pieces are the reference.")
@click.option("--split", type=click.Choice(["validation", "test"]), default="validation", show_default=True,
              help="Reference split: validation for every choice, test once, for a model card.")
@click.option("--train", "train_dir", type=click.Path(), default=None,
              help="Training corpus folder, for copying, Markov baselines and the ceiling [default: "
                   "--reference's train split].")
@click.option("--preset", default="piano", show_default=True,
              help="Preset the model's output is arranged and sampled with (what `play` sends).")
@click.option("--temperature", type=float, default=None, help="Sampling temperature, overriding the preset.")
@click.option("--count", type=int, default=1000, show_default=True, help="Windows per side and row (at most).")
@click.option("--splits", type=int, default=3, show_default=True, help="Splits the neural test averages over.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed for generation, sampling and judges.")
@click.option("--baselines/--no-baselines", default=True, show_default=True,
              help="Also score the calibration rows (real music, halves, uniform, Markov, seed model).")
@click.option("--streams/--no-streams", default=True, show_default=True,
              help="Also judge windows 8 and 16 sequences deep into continued streams.")
@click.option("--seed-model", type=click.Path(dir_okay=False), default=None,
              help="The paper-design model for its calibration row [default: the shipped seed.onnx].")
@click.option("--candidates", type=int, default=None,
              help="Phrases the model's critic chooses among (1 = no choice: the ablation) [default: the model's].")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@friendly
def evaluate(source, reference, split, train_dir, preset, temperature, count, splits, seed, baselines, streams,
             seed_model, candidates, as_json):
    """Judge a model (ONNX) or a MIDI folder against held-out real piano music."""
    from .evaluate import evaluate as run_evaluate, format_table

    if seed < 0:
        raise click.BadParameter(f"must be 0 or more, got {seed}", param_hint="--seed")
    res = run_evaluate(source, reference, train_dir, split=split, preset=preset, count=count, seed=seed,
                       splits=splits, temperature=temperature, baselines=baselines, seed_model=seed_model,
                       candidates=candidates,
                       streams=streams, progress=None if as_json else (lambda m: click.echo(f"... {m}", err=True)))
    click.echo(json.dumps(res, indent=2) if as_json else format_table(res))


if __name__ == "__main__":
    main()
