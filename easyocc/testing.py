"""Support shared by the tests and the benchmarks (one copy, importable without sys.path edits).

- The tiny contract model: an ONNX graph built with onnx.helper that follows the deployed-model
  contract, its manifest (`contract_manifest`, the one manifest builder), grey test frames.
  The graph samples each camera's image at the view-transform coordinates (4-D GridSample, bilinear,
  zero padding, align_corners=0), weights and sums the cameras, and turns the mean brightness b in
  [0, 1] of each cell into a class: 17 (free) when b < FREE_BELOW, else floor(17 * b) (capped at 16);
  confidence = b. With a uniform grey level g in every image, cells seen by a camera get class
  floor(17 * g / 255) and cells seen by none are free.
- The tiny training setup: `TINY_TRAIN_CONFIG` (training/configs/tiny.yaml), `tiny_model_config`,
  `make_tiny_world` (a two-scene synthetic world in seconds).
- ROS processes: `ros_env` (a domain of one's own, discovery on localhost) and `RosProcess`
  (`python -m easyocc ros ...` with its output in a file).

numpy and OpenCV at import; onnx, torch and the synthetic world only inside the functions that need them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from easyocc.calibration import CameraRig, default_rig
from easyocc.runtime.contract.frames import CameraImage, FrameSet
from easyocc.runtime.contract.grid import GridSpec
from easyocc.runtime.contract.manifest import (
    INPUT_IMAGES,
    INPUT_VT_UV,
    INPUT_VT_WEIGHTS,
    ONNX_METADATA_KEY,
    OUTPUT_CONFIDENCE,
    OUTPUT_SEMANTICS,
    Manifest,
    TensorSpec,
    ViewTransformSpec,
)

TINY_GRID = GridSpec((-8.0, -8.0, -1.0), (8.0, 8.0, 2.2), 0.8)  # 20 x 20 x 4
TINY_INPUT_SIZE = (96, 64)  # (width, height) at the network
FREE_BELOW = 0.1
SMALL_RIG_SIZE = (320, 180)  # camera images the tests feed (the nuScenes rig scaled down 5x)


def contract_manifest(
    camera_names,
    input_size,
    grid: GridSpec,
    stride_xy: int = 1,
    stride_z: int = 1,
    model_name: str = "tiny-contract-model",
    model_version: str = "0.0-test",
    training_data: str = "none (test fixture)",
    **fields,
) -> Manifest:
    """The one manifest builder of tests and benchmarks: the deployed-model contract for these cameras,
    network input size (width, height), grid and view-transform strides."""
    names = tuple(camera_names)
    width, height = input_size
    spec = ViewTransformSpec(stride_xy, stride_z, 0.1)
    cells = spec.num_cells(grid)
    return Manifest(
        model_name=model_name,
        model_version=model_version,
        grid=grid,
        camera_names=names,
        input_size=(width, height),
        view_transform=spec,
        inputs=(
            TensorSpec(INPUT_IMAGES, "uint8", (len(names), height, width, 3)),
            TensorSpec(INPUT_VT_UV, "float32", (len(names), cells, 2)),
            TensorSpec(INPUT_VT_WEIGHTS, "float32", (len(names), cells)),
        ),
        outputs=(
            TensorSpec(OUTPUT_SEMANTICS, "uint8", grid.shape),
            TensorSpec(OUTPUT_CONFIDENCE, "float32", grid.shape),
        ),
        training_data=training_data,
        **fields,
    )


def tiny_manifest(grid: GridSpec = TINY_GRID, input_size=TINY_INPUT_SIZE, camera_names=None, **fields) -> Manifest:
    """The manifest of the tiny contract model (strides 1: the graph samples every voxel)."""
    return contract_manifest(camera_names or default_rig().names, input_size, grid, **fields)


def build_tiny_model(path, manifest: Manifest | None = None, work: int = 0, metadata: str | None = None) -> Path:
    """Write the tiny contract model to `path` (opset 17) and return the path.

    work: number of extra 256x256 MatMuls that make inference cost measurable (benchmarks).
    metadata: the manifest JSON to store (default manifest.to_json()); "" stores none.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    manifest = manifest or tiny_manifest()
    n_cam = len(manifest.camera_names)
    width, height = manifest.input_size
    x, y, z = manifest.grid_spec.shape
    n_cell = x * y * z
    nodes, inits = [], []

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(op, inputs, output, **attrs):
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    img = node("Cast", [INPUT_IMAGES], "img_f", to=TensorProto.FLOAT)
    img = node("Transpose", [img], "img_nchw", perm=[0, 3, 1, 2])
    img = node("Mul", [img, const("inv255", np.float32(1 / 255))], "img_01")
    grid = node("Unsqueeze", [INPUT_VT_UV, const("axis2", np.array([2], np.int64))], "grid")  # [N, C, 1, 2]
    sampled = node("GridSample", [img, grid], "sampled", mode="bilinear", padding_mode="zeros", align_corners=0)
    weights = node("Reshape", [INPUT_VT_WEIGHTS, const("w_shape", np.array([n_cam, 1, n_cell, 1], np.int64))], "w4")
    weighted = node("Mul", [sampled, weights], "weighted")  # [N, 3, C, 1]
    fused = node("ReduceSum", [weighted, const("axes0", np.array([0, 1, 3], np.int64))], "fused", keepdims=0)
    bright = node("Mul", [fused, const("third", np.float32(1 / 3))], "bright")  # [C] in [0, 1]
    if work:
        flat = node("Reshape", [img, const("flat", np.array([-1], np.int64))], "flat_img")
        part = node(
            "Slice", [flat, const("s0", np.array([0], np.int64)), const("s1", np.array([65536], np.int64))], "part"
        )
        mat = node("Reshape", [part, const("m_shape", np.array([256, 256], np.int64))], "mat")
        w = const("work_w", np.random.default_rng(0).standard_normal((256, 256)).astype(np.float32) / 16)
        for i in range(work):
            mat = node("MatMul", [mat, w], f"work_{i}")
        tiny = node("Mul", [node("ReduceMean", [mat], "work_mean", keepdims=0), const("zero", np.float32(0))], "work0")
        bright = node("Add", [bright, tiny], "bright_w")
    scaled = node(
        "Min", [node("Mul", [bright, const("k17", np.float32(17))], "b17"), const("cap", np.float32(16.5))], "capped"
    )
    klass = node("Floor", [scaled], "klass")
    is_free = node("Less", [bright, const("free_below", np.float32(FREE_BELOW))], "is_free")
    sem_f = node("Where", [is_free, const("free", np.float32(17)), klass], "sem_f")
    shape = const("grid_shape", np.array([x, y, z], np.int64))
    node("Cast", [node("Reshape", [sem_f, shape], "sem_r")], OUTPUT_SEMANTICS, to=TensorProto.UINT8)
    node("Reshape", [bright, shape], OUTPUT_CONFIDENCE)

    graph = helper.make_graph(
        nodes,
        "tiny_easyocc",
        [
            helper.make_tensor_value_info(INPUT_IMAGES, TensorProto.UINT8, [n_cam, height, width, 3]),
            helper.make_tensor_value_info(INPUT_VT_UV, TensorProto.FLOAT, [n_cam, n_cell, 2]),
            helper.make_tensor_value_info(INPUT_VT_WEIGHTS, TensorProto.FLOAT, [n_cam, n_cell]),
        ],
        [
            helper.make_tensor_value_info(OUTPUT_SEMANTICS, TensorProto.UINT8, [x, y, z]),
            helper.make_tensor_value_info(OUTPUT_CONFIDENCE, TensorProto.FLOAT, [x, y, z]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="easyocc-tests")
    model.ir_version = 8
    text = manifest.to_json() if metadata is None else metadata
    if text:
        entry = model.metadata_props.add()
        entry.key, entry.value = ONNX_METADATA_KEY, text
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def small_rig(size=SMALL_RIG_SIZE) -> CameraRig:
    """The nuScenes rig with images scaled to `size` (width, height)."""
    return default_rig().resized(*size)


def encode_jpeg(image_rgb: np.ndarray, quality: int = 90) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def grey_frame(rig: CameraRig, level: int, stamp_us: int, seq: int = 0, encoded: bool = True, skip=()) -> FrameSet:
    """A frame set of uniform grey images (value `level`) for every camera of `rig` but those in `skip`."""
    images = []
    for camera in rig:
        if camera.name in skip:
            continue
        image = np.full((camera.height, camera.width, 3), level, np.uint8)
        if encoded:
            images.append(CameraImage(camera.name, stamp_us, data=encode_jpeg(image)))
        else:
            images.append(CameraImage(camera.name, stamp_us, image=image))
    return FrameSet.from_images(images, seq=seq)


def expected_class(level: int) -> int:
    """Class the tiny model gives a cell seen in uniform grey `level` images (17 = free)."""
    bright = level / 255
    return 17 if bright < FREE_BELOW else min(int(np.floor(17 * bright)), 16)


# --- the tiny training setup ---------------------------------------------------------------------
TINY_TRAIN_CONFIG = Path(__file__).resolve().parents[1] / "training" / "configs" / "tiny.yaml"
TINY_WORLD_GRID = GridSpec(voxel_size=1.6)  # the Occ3D range at 1.6 m: 50 x 50 x 4


def tiny_model_config(**overrides):
    """A ModelConfig small enough for CPU tests: width 8, 128 x 64 images, TINY_WORLD_GRID, strides 2."""
    from easyocc.training.model.config import ModelConfig

    base = dict(
        backbone_width=8,
        neck_channels=16,
        voxel_channels=8,
        bev_channels=16,
        bev_blocks=1,
        input_size=(128, 64),
        grid=TINY_WORLD_GRID,
        stride_xy=2,
        stride_z=2,
    )
    return ModelConfig(**{**base, **overrides})


def make_tiny_world(root) -> str:
    """2 scenes x 2 key frames at 128x64 with exact ground truth on TINY_WORLD_GRID (a few seconds)."""
    from easyocc.training.synth import SynthConfig, generate_dataset

    config = SynthConfig(
        scenes=2, frames=2, image_size=(128, 64), grid=TINY_WORLD_GRID, lidar_beams=8, lidar_azimuth_steps=180,
        subsamples=1,
    )  # fmt: skip
    return str(generate_dataset(root, config, progress=False))


# --- ROS processes ---------------------------------------------------------------------------------
def ros_env(domain_id: int) -> dict:
    """Environment for a ROS process: its own domain, discovery on localhost only, Fast DDS."""
    env = dict(os.environ)
    env.update(
        {
            "ROS_DOMAIN_ID": str(domain_id),
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",  # Jazzy; Humble would need ROS_LOCALHOST_ONLY=1
            "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("ROS_STATIC_PEERS", None)
    return env


class RosProcess:
    """`python -m easyocc ros ...` in its own process; output captured to a file."""

    def __init__(self, args: list[str], env: dict, log_path: Path, cwd=None):
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "easyocc", "ros", *args],
            cwd=cwd,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    def wait_for_output(self, text: str, timeout_s: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.output:
                return True
            if self.proc.poll() is not None:
                return text in self.output
            time.sleep(0.05)
        return False

    def interrupt(self, timeout_s: float = 20.0) -> int:
        """SIGINT, then wait; returns the exit code (kills and fails loudly if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"process did not exit {timeout_s} s after SIGINT:\n{self.output[-3000:]}") from None

    def wait(self, timeout_s: float) -> int:
        return self.proc.wait(timeout_s)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
