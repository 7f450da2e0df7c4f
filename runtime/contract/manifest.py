"""The model manifest: what a model or engine was built for, stored in ONNX metadata and beside engines.

The runtime refuses a model whose manifest does not match the rig, the grid or the runtime itself.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace

from easyocc.runtime.contract.classes import CLASS_NAMES
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import GridSpec

MANIFEST_FORMAT = "easyocc-manifest/1"
ONNX_METADATA_KEY = "easyocc_manifest"

# Tensor names of the model contract (design.md).
INPUT_IMAGES = "images"  # uint8 [N_cam, H, W, 3] RGB at network resolution
INPUT_VT_UV = "vt_uv"  # float32 [N_cam, N_cell, 2] sampling coordinates in [-1, 1]
INPUT_VT_WEIGHTS = "vt_weights"  # float32 [N_cam, N_cell] per-camera weights
OUTPUT_SEMANTICS = "semantics"  # uint8 [X, Y, Z]
OUTPUT_CONFIDENCE = "confidence"  # float32 [X, Y, Z] softmax probability of the argmax class


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: dict) -> TensorSpec:
        return cls(str(data["name"]), str(data["dtype"]), tuple(int(v) for v in data["shape"]))


@dataclass(frozen=True)
class EngineInfo:
    """Present only for TensorRT engines (sidecar manifest)."""

    tensorrt_version: str
    compute_capability: str
    precision: str
    onnx_sha256: str
    dla_core: int = -1
    quantization: str = ""  # "" or QuantizationInfo.scheme of an explicitly quantized (Q/DQ) ONNX model


@dataclass(frozen=True)
class QuantizationInfo:
    """Present only for explicitly quantized (Q/DQ) models: how `easyocc export int8` quantized them.

    scheme: e.g. 'int8-qdq'; tool: the quantizer and its version; weights / activations: the
    quantization of each; calibration: method, frames and where they came from; quantized_nodes:
    how many nodes got Q/DQ inputs; kept_out: reason -> names of the nodes left in higher precision;
    source_onnx_sha256: the float ONNX model it was made from.
    """

    scheme: str
    tool: str
    weights: str
    activations: str
    calibration: dict
    quantized_nodes: int
    kept_out: dict
    source_onnx_sha256: str

    @classmethod
    def from_dict(cls, data: dict) -> QuantizationInfo:
        return cls(
            scheme=str(data["scheme"]),
            tool=str(data["tool"]),
            weights=str(data["weights"]),
            activations=str(data["activations"]),
            calibration=dict(data["calibration"]),
            quantized_nodes=int(data["quantized_nodes"]),
            kept_out={str(k): [str(n) for n in v] for k, v in dict(data["kept_out"]).items()},
            source_onnx_sha256=str(data["source_onnx_sha256"]),
        )


@dataclass(frozen=True)
class ViewTransformSpec:
    """How the view-transform tables are built from a rig (calibration.build_view_transform).

    The tables sample the rig resized to the model's input size at the centres of the grid's cells
    (grid.centres(stride_xy, stride_z)); a camera sees a cell when its z-depth exceeds min_depth_m.
    """

    stride_xy: int
    """A cell spans stride_xy voxels in x and in y."""
    stride_z: int
    """A cell spans stride_z voxels in z."""
    min_depth_m: float
    """Cells nearer than this (camera z-depth, metres) get zero weight."""

    def __post_init__(self):
        for name in ("stride_xy", "stride_z"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or int(value) < 1:
                raise EasyOccError(f"view transform: {name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if not float(self.min_depth_m) >= 0:
            raise EasyOccError(f"view transform: min_depth_m must be >= 0, got {self.min_depth_m!r}")
        object.__setattr__(self, "min_depth_m", float(self.min_depth_m))

    def centres(self, grid: GridSpec):
        """float [X/stride_xy, Y/stride_xy, Z/stride_z, 3] cell centres in the ego frame (metres)."""
        return grid.centres(self.stride_xy, self.stride_z)

    def num_cells(self, grid: GridSpec) -> int:
        x, y, z = grid.shape
        return (x // self.stride_xy) * (y // self.stride_xy) * (z // self.stride_z)

    def to_dict(self) -> dict:
        return {"stride_xy": self.stride_xy, "stride_z": self.stride_z, "min_depth_m": self.min_depth_m}

    @classmethod
    def from_dict(cls, data: dict) -> ViewTransformSpec:
        """Every field required, no other: a manifest never falls back to a silent default."""
        if not isinstance(data, dict):
            raise EasyOccError(f"view transform: expected an object, got {type(data).__name__}")
        expected = ("stride_xy", "stride_z", "min_depth_m")
        missing, unknown = [k for k in expected if k not in data], sorted(set(data) - set(expected))
        if missing or unknown:
            raise EasyOccError(
                f"view transform: missing fields {missing or 'none'}, unknown fields {unknown or 'none'}"
            )
        return cls(**data)


@dataclass(frozen=True)
class Manifest:
    """Everything a runtime must know to feed a model and to interpret its outputs.

    grid: the output GridSpec; input_size: (width, height) of each network image; view_transform:
    how the tables are built from the rig resized to input_size. Both may be given as dicts (their
    JSON form); they are typed on construction.
    """

    model_name: str
    model_version: str
    grid: GridSpec
    camera_names: tuple[str, ...]
    input_size: tuple[int, int]
    view_transform: ViewTransformSpec
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    class_names: tuple[str, ...] = CLASS_NAMES
    colour_order: str = "RGB"
    training_data: str = "unspecified"
    model_config: dict = field(default_factory=dict)
    engine: EngineInfo | None = None
    quantization: QuantizationInfo | None = None
    format: str = MANIFEST_FORMAT

    def __post_init__(self):
        if isinstance(self.grid, dict):
            object.__setattr__(self, "grid", GridSpec.from_dict(self.grid))
        if isinstance(self.view_transform, dict):
            object.__setattr__(self, "view_transform", ViewTransformSpec.from_dict(self.view_transform))
        if not isinstance(self.grid, GridSpec) or not isinstance(self.view_transform, ViewTransformSpec):
            raise EasyOccError("manifest: grid must be a GridSpec and view_transform a ViewTransformSpec (or dicts)")

    @property
    def grid_spec(self) -> GridSpec:
        """The grid (an alias of `grid`, kept for callers written when it was a dict)."""
        return self.grid

    def input(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise EasyOccError(f"manifest has no input named '{name}'")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["grid"] = self.grid.to_dict()
        data["view_transform"] = self.view_transform.to_dict()
        data["inputs"] = [spec.to_dict() for spec in self.inputs]
        data["outputs"] = [spec.to_dict() for spec in self.outputs]
        data["camera_names"] = list(self.camera_names)
        data["class_names"] = list(self.class_names)
        data["input_size"] = list(self.input_size)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        if not isinstance(data, dict):
            raise EasyOccError("manifest: expected a JSON object")
        if data.get("format") != MANIFEST_FORMAT:
            raise EasyOccError(
                f"manifest format '{data.get('format')}' is not supported by this runtime ({MANIFEST_FORMAT})"
            )
        try:
            engine = data.get("engine")
            return cls(
                model_name=str(data["model_name"]),
                model_version=str(data["model_version"]),
                grid=GridSpec.from_dict(data["grid"]),
                camera_names=tuple(data["camera_names"]),
                input_size=tuple(int(v) for v in data["input_size"]),
                view_transform=ViewTransformSpec.from_dict(data["view_transform"]),
                inputs=tuple(TensorSpec.from_dict(d) for d in data["inputs"]),
                outputs=tuple(TensorSpec.from_dict(d) for d in data["outputs"]),
                class_names=tuple(data.get("class_names", CLASS_NAMES)),
                colour_order=str(data.get("colour_order", "RGB")),
                training_data=str(data.get("training_data", "unspecified")),
                model_config=dict(data.get("model_config") or {}),
                engine=EngineInfo(**engine) if engine else None,
                quantization=QuantizationInfo.from_dict(data["quantization"]) if data.get("quantization") else None,
            )
        except KeyError as exc:
            raise EasyOccError(f"manifest: missing field {exc}") from None
        except (TypeError, ValueError) as exc:
            raise EasyOccError(f"manifest: malformed field ({exc})") from None

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise EasyOccError(f"manifest: invalid JSON ({exc.msg} at line {exc.lineno})") from None

    def with_engine(self, engine: EngineInfo) -> Manifest:
        return replace(self, engine=engine)

    def check_rig(self, camera_names) -> None:
        """Raise unless the rig has exactly the model's cameras in the model's order."""
        names = tuple(camera_names)
        if names == self.camera_names:
            return
        missing = [n for n in self.camera_names if n not in names]
        extra = [n for n in names if n not in self.camera_names]
        if missing or extra:
            raise EasyOccError(
                f"rig does not match the model: missing {missing or 'none'}, unexpected {extra or 'none'}"
            )
        raise EasyOccError(f"rig camera order {list(names)} differs from the model's {list(self.camera_names)}")

    def check_grid(self, grid: GridSpec) -> None:
        mine = self.grid
        if mine != grid:
            raise EasyOccError(f"grid differs: model has {mine.describe()}, runtime expects {grid.describe()}")

    def check_classes(self) -> None:
        names = tuple(self.class_names)
        if names != CLASS_NAMES:
            differing = [f"{i}: {a!r} != {b!r}" for i, (a, b) in enumerate(zip(names, CLASS_NAMES)) if a != b][:3]
            raise EasyOccError(
                f"model classes differ from the runtime's Occ3D taxonomy: {len(names)} vs {len(CLASS_NAMES)} "
                f"classes; first differences {differing or 'none (a longer or shorter list)'}"
            )

    def check_meaning(self) -> None:
        """Refuse a manifest whose fields say something this runtime would not honour, or contradict the
        model_config it was built from (when it carries one): colour order, grid (origin, voxel size,
        range), input size, cameras, view-transform spec, classes, normalisation. An edited manifest
        with the same tensor shapes (0.5 m voxels over +-50 m, still 200x200x16) would otherwise run and
        publish every voxel at the wrong place."""
        if self.colour_order != "RGB":
            raise EasyOccError(
                f"manifest colour_order is '{self.colour_order}': this runtime feeds RGB images only; "
                "re-export the model for RGB input"
            )
        config = self.model_config
        if not config:
            return
        stated = {
            "grid": (self.grid, GridSpec.from_dict(config["grid"]) if config.get("grid") else None),
            "input_size": (tuple(self.input_size), tuple(config.get("input_size") or ()) or None),
            "camera_names": (tuple(self.camera_names), tuple(config.get("camera_names") or ()) or None),
            "view_transform.stride_xy": (self.view_transform.stride_xy, config.get("stride_xy")),
            "view_transform.stride_z": (self.view_transform.stride_z, config.get("stride_z")),
            "view_transform.min_depth_m": (self.view_transform.min_depth_m, config.get("min_depth_m")),
            "class_names": (len(self.class_names), config.get("num_classes")),
        }
        for name, (mine, trained) in stated.items():
            if trained is not None and mine != trained:
                raise EasyOccError(
                    f"manifest {name} {_brief(mine)} differs from its model_config's {_brief(trained)}, which "
                    "the model was trained for: the manifest was edited or built for another model"
                )
        for key in ("pixel_mean", "pixel_std"):
            values = config.get(key)
            if values is None:
                continue
            ok = isinstance(values, (list, tuple)) and len(values) == 3
            ok = ok and all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
            if not ok or (key == "pixel_std" and min(values) <= 0):
                raise EasyOccError(f"manifest model_config {key} {values!r}: expected 3 finite numbers (std > 0)")

    def summary(self) -> str:
        width, height = self.input_size
        precision = f", {self.engine.precision} TensorRT {self.engine.tensorrt_version}" if self.engine else ""
        precision += f", {self.quantization.scheme}" if self.quantization else ""
        return (
            f"{self.model_name} {self.model_version}: {len(self.camera_names)} cams {width}x{height}, "
            f"grid {self.grid.describe()}{precision}"
        )


def _brief(value, limit: int = 90) -> str:
    """A value for a one-line message: a grid described, anything else repr'd, cut at `limit` chars."""
    text = value.describe() if isinstance(value, GridSpec) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
