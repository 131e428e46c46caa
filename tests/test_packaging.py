"""`pip install .` must carry the shipped models and presets, so the runtime works anywhere."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_carries_models_and_presets(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip().splitlines()[-1:]}")
    (wheel,) = tmp_path.glob("midigan-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for p in sorted(ROOT.glob("export/*.onnx")) + sorted(ROOT.glob("presets/*.toml")):
        assert f"midigan/_data/{p.parent.name}/{p.name}" in names, p.name
    assert "midigan/_data/export/default.onnx" in names
    assert not [n for n in names if "/training/" in n and n.endswith(".pt")]
