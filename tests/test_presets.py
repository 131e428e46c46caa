import pytest

from midigan.presets import list_presets, load_preset, make_preset, override, read_preset


def test_shipped_presets_load_and_differ():
    ps = {p.name: p for p in list_presets()}
    for name in ("raw", "nocturne", "etude", "arpeggio", "ambient", "ballad", "piano"):
        assert name in ps
    # Clearly different: no two share tempo, step, scale and range at once.
    sig = {(p.bpm, p.step, p.scale, p.low, p.high) for p in ps.values()}
    assert len(sig) == len(ps)


def test_raw_is_the_papers_assumption():
    raw = load_preset("raw")
    assert raw.scale == "chromatic" and raw.rhythm == (1,)
    assert raw.humanize == 0 and raw.accent == 0 and raw.swing == 0
    assert (raw.low, raw.high) == (21, 108)


def test_step_beats():
    assert make_preset({"step": "1/16"}).step_beats == 0.25
    assert make_preset({"step": "1/4"}).step_beats == 1.0


@pytest.mark.parametrize("data,needle", [
    ({"tempo": 120}, "unknown key 'tempo'"),
    ({"bpm": 0}, "bpm"),
    ({"bpm": "fast"}, "bpm"),
    ({"channel": 17}, "channel"),
    ({"gate": 2.0}, "gate"),
    ({"scale": "lydian-augmented"}, "scale"),
    ({"key": "H"}, "key"),
    ({"step": "1/0"}, "step"),
    ({"rhythm": []}, "rhythm"),
    ({"velocity": True}, "velocity"),
    ({"chords": "yes"}, "chords = 'yes' is invalid \\(expected true or false\\)"),
    ({"low": 60, "high": 65}, "high"),
    ({"timing": "free"}, "timing"),
    ({"density": 5.0}, "density"),
    ({"figures": 20.0}, "figures"),
    ({"quantise": "1/0"}, "quantise"),
    ({"quantise": "2"}, "quantise"),
    ({"velocity_low": 0}, "velocity_low"),
    ({"velocity_low": 90, "velocity_high": 80}, "velocity_high"),
])
def test_bad_values_name_the_key(data, needle):
    with pytest.raises(ValueError, match=needle):
        make_preset(data, name="x")


def test_toml_file_and_errors(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('bpm = 90.0\nscale = "minor"\nkey = "Bb"\n')
    pr = read_preset(p)
    assert pr.name == "mine" and pr.key_pc == 10 and pr.bpm == 90.0
    bad = tmp_path / "bad.toml"
    bad.write_text("bpm = = 3\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_preset(str(bad))
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        load_preset("nope")
    with pytest.raises(ValueError, match="cannot read preset"):
        load_preset(str(tmp_path / "missing.toml"))


def test_override_validates():
    pr = override(load_preset("piano"), bpm=140.0, channel=None)
    assert pr.bpm == 140.0 and pr.channel == load_preset("piano").channel
    with pytest.raises(ValueError, match="bpm"):
        override(pr, bpm=1000.0)
