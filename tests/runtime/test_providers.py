"""ONNX Runtime execution providers chosen by a runtime option (RuntimeConfig.providers)."""

from __future__ import annotations

import pytest
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.streaming import RuntimeConfig, open_runtime

from tests.runtime.stream_fixtures import (
    rig,  # noqa: F401  (pytest fixture)
    tiny_model,  # noqa: F401  (pytest fixture)
)


def test_providers_option_reaches_onnx_runtime(tiny_model, rig):  # noqa: F811
    with open_runtime(RuntimeConfig(model=str(tiny_model), providers=("CPUExecutionProvider",)), rig) as runtime:
        assert runtime.runner.providers == ["CPUExecutionProvider"]
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed here: the refusal below cannot happen")
    config = RuntimeConfig(model=str(tiny_model), providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    with pytest.raises(EasyOccError, match=r"onnxruntime: providers \['CUDAExecutionProvider'\] are not available"):
        open_runtime(config, rig)


def test_providers_need_the_onnxruntime_backend(tiny_model, rig):  # noqa: F811
    config = RuntimeConfig(model=str(tiny_model), backend="torch", providers=("CPUExecutionProvider",))
    with pytest.raises(EasyOccError, match="runtime.providers are ONNX Runtime's; the backend is torch"):
        open_runtime(config, rig)
