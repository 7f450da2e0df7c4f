"""The bench latency plot: its refusals are one line; without matplotlib the bench still writes its JSON."""

from __future__ import annotations

import subprocess
import sys

import pytest
from easyocc.runtime.contract.errors import EasyOccError


def test_report_without_results_is_refused(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib (the plot extra) is not installed")
    from easyocc.runtime.bench_plot import write_latency_plot

    with pytest.raises(EasyOccError, match="latency plot: the report has no backend results"):
        write_latency_plot({"results": []}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_without_matplotlib_the_plot_is_one_line():
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"  # as if matplotlib were not installed
        "from easyocc.runtime.bench_plot import write_latency_plot\n"
        "try:\n    write_latency_plot({'results': [{}]}, 'x.png')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "EasyOccError the latency plot needs matplotlib: pip install 'easyocc[plot]'"
