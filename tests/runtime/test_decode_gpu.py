"""The nvImageCodec decode backend (runtime/decode_gpu.py): a clear error where it cannot run, and on a
machine with a CUDA GPU and the wheel, the same images and occupancy as the OpenCV decoder."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.decode_gpu import gpu_decoder_unavailable

WHY_NOT = gpu_decoder_unavailable()


@pytest.mark.skipif(WHY_NOT is None, reason="nvImageCodec runs here; the error path cannot be reached")
def test_unavailable_gpu_decoder_is_refused_with_the_reason():
    from easyocc.calibration import default_rig
    from easyocc.runtime.contract.preprocess import CameraPreprocessor

    with pytest.raises(EasyOccError, match=r"^decoder 'nvimgcodec' (needs NVIDIA nvImageCodec|cannot start)") as exc:
        CameraPreprocessor(default_rig(), (704, 256), decoder="nvimgcodec")
    assert str(exc.value) == WHY_NOT and "\n" not in WHY_NOT


@pytest.mark.skipif(WHY_NOT is not None, reason=f"no GPU JPEG decoding here: {WHY_NOT}")
def test_gpu_decode_matches_opencv_on_real_jpegs(nuscenes_dataset):
    from easyocc.runtime.contract.preprocess import decode_image
    from easyocc.runtime.decode_gpu import GpuJpegDecoder

    sample = nuscenes_dataset.samples()[0]
    data = [frame.path.read_bytes() for frame in sample.cameras.values()]
    decoded = GpuJpegDecoder().decode(data, list(sample.cameras))
    for image, jpeg in zip(decoded, data):
        reference = decode_image(jpeg).astype(np.float64)
        assert image.shape == reference.shape == (900, 1600, 3) and image.dtype == np.uint8
        assert np.abs(image - reference).mean() < 2.0  # IDCT and chroma upsampling differ slightly
    with pytest.raises(EasyOccError, match="camera X: not a decodable JPEG or PNG"):
        GpuJpegDecoder().decode([b"\xff\xd8garbage" * 10], ["camera X"])


@pytest.mark.skipif(WHY_NOT is not None, reason=f"no GPU JPEG decoding here: {WHY_NOT}")
def test_runtime_with_the_gpu_decoder(nuscenes_root):
    from easyocc.models import bundled_model
    from easyocc.runtime.occupancy import OccupancyRuntime
    from easyocc.runtime.sources import NuScenesSource

    source = NuScenesSource(nuscenes_root)
    frame = next(iter(source))
    with (
        OccupancyRuntime(bundled_model(".onnx"), rig=source.rig, reduced_decode=False) as cpu,
        OccupancyRuntime(bundled_model(".onnx"), rig=source.rig, decoder="nvimgcodec") as gpu,
    ):
        assert np.mean(cpu.process(frame).semantics == gpu.process(frame).semantics) > 0.95
