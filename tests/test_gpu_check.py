"""benchmarks/gpu_check.py: refuses clearly without a GPU; its CPU smoke mode is run by hand (~90 s)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_stops_with_one_clear_line(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the script would run")
    assert _load().main(["--json", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gpu_check: error: no CUDA device (torch ") and err.endswith(
        "--cpu-smoke to check the script here"
    )
    assert not (tmp_path / "out.json").exists()


def test_too_few_jpegs_is_refused(tmp_path, capsys):
    module = _load()
    with pytest.raises(module.CheckError, match=r"--jpegs .*: expected six camera JPEGs, found 0$"):
        module.read_jpegs(tmp_path)


def test_percentiles_and_cpu_timing():
    module = _load()
    stats = module.percentiles([1.0, 2.0, 3.0, 4.0])
    assert stats["count"] == 4 and stats["p50"] == 2.5 and stats["mean"] == 2.5
    calls = []
    timing = module.timed(lambda: calls.append(1), iters=5, warmup=2, cuda=False)
    assert len(calls) == 7 and timing["count"] == 5 and timing["p50"] >= 0
