"""The ONNX Runtime path imports and runs with torch (and TensorRT, pycuda, onnx, training, export)
not importable: a meta-path blocker in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import PROJECT_ROOT
from tests.runtime.stream_fixtures import tiny_model  # noqa: F401  (pytest fixture)

BLOCKED = ("torch", "tensorrt", "pycuda", "onnx", "rclpy", "cuda", "easyocc.training", "easyocc.export")

SCRIPT = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {blocked!r} or name.startswith(('easyocc.training', 'easyocc.export')):
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
try:
    import torch
except ImportError:
    print('torch blocked')
import numpy as np
import easyocc.runtime.backends, easyocc.runtime.occupancy, easyocc.runtime.pipeline, easyocc.runtime.sources, easyocc.runtime.sinks
import easyocc.commands.bench, easyocc.commands.stream, easyocc.commands.demo
from easyocc.runtime.occupancy import OccupancyRuntime
from easyocc.runtime.pipeline import StreamPipeline
from easyocc.runtime.sources import IterableSource
from tests.runtime.stream_fixtures import expected_class, grey_frame, small_rig
rig = small_rig()
with OccupancyRuntime({model!r}, rig=rig, threads=1) as runtime:
    result = runtime.process(grey_frame(rig, 150, stamp_us=1))
    frames = [grey_frame(rig, 150, stamp_us=10 + i, seq=i) for i in range(3)]
    report = StreamPipeline(runtime, IterableSource(frames)).run()
    seen = runtime.observed()
share = float(np.mean(result.semantics[seen] == expected_class(150)))
heavy = sorted(m for m in sys.modules if m.split('.')[0] in {blocked!r} or m.startswith(('easyocc.training', 'easyocc.export')))
print('frames', report.frames_out, 'share', round(share, 2), 'heavy', heavy)
"""


def test_onnxruntime_path_runs_without_torch(tiny_model):  # noqa: F811
    script = SCRIPT.format(blocked=set(BLOCKED), model=str(tiny_model))
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "torch blocked" in result.stdout
    assert "frames 3" in result.stdout and "heavy []" in result.stdout
    share = float(result.stdout.split("share ")[1].split()[0])
    assert share > 0.7
