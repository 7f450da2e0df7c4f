"""ModelConfig: the one description of a model, stored in every checkpoint and used to rebuild it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from easyocc.calibration import NUSCENES_CAMERAS
from easyocc.runtime.contract import config as config_system
from easyocc.runtime.contract.classes import NUM_CLASSES
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import OCC3D_NUSCENES, GridSpec

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")
HEADS = ("compact", "paper")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture, input and output geometry of an EasyOcc model (all sizes derive from here)."""

    head: str = "compact"
    """'compact' (height folded into channels, 2-D BEV encoder, FlashOcc-style) or 'paper' (3-D CNN)."""
    backbone: str = "resnet18"
    """Image backbone: resnet18, resnet34, resnet50 or resnet101 (torchvision parameter names)."""
    backbone_width: int = 40
    """Channels of the ResNet stem; 64 is torchvision's (ImageNet weights load only at 64). The
    default 40 keeps the compact model at 6x256x704 under 51 GFLOPs."""
    neck_channels: int = 128
    """Channels of the FPN output, one map at stride 16."""
    voxel_channels: int = 32
    """Channels sampled per cell by the view transform (the FPN output is reduced to this first)."""
    bev_channels: int = 96
    """Width of the compact head's 2-D BEV encoder, or of the paper head's 3-D CNN."""
    bev_blocks: int = 2
    """Residual blocks per BEV encoder stage (two stages: full and half cell resolution)."""
    grid: GridSpec = OCC3D_NUSCENES
    """Output grid (in YAML and checkpoints its dict form, GridSpec.to_dict()); None means Occ3D-nuScenes."""
    input_size: tuple[int, int] = (704, 256)
    """(width, height) of every network image in pixels; both multiples of 32."""
    camera_names: tuple[str, ...] = NUSCENES_CAMERAS
    """Camera order of the `images` and view-transform inputs."""
    stride_xy: int = 2
    """Cells of the view transform span stride_xy voxels in x and y; the head upsamples back."""
    stride_z: int = 2
    """Cells span stride_z voxels in z."""
    min_depth_m: float = 0.1
    """View-transform tables: a voxel is seen by a camera when its camera z-depth exceeds this."""
    num_classes: int = NUM_CLASSES
    """Output classes (the 18 Occ3D classes, free included)."""
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    """RGB mean subtracted inside forward (ImageNet, 0-255 scale)."""
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)
    """RGB std divided inside forward."""

    def __post_init__(self):
        if not isinstance(self.grid, GridSpec):
            object.__setattr__(self, "grid", GridSpec.from_dict(self.grid) if self.grid else OCC3D_NUSCENES)
        for name in ("input_size", "camera_names", "pixel_mean", "pixel_std"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        if self.head not in HEADS:
            raise EasyOccError(f"model: unknown head '{self.head}' ({', '.join(HEADS)})")
        if self.backbone not in BACKBONES:
            raise EasyOccError(f"model: unknown backbone '{self.backbone}' ({', '.join(BACKBONES)})")
        width, height = self.input_size
        if len(self.input_size) != 2 or width % 32 or height % 32 or width <= 0 or height <= 0:
            raise EasyOccError(f"model: input_size {self.input_size} must be (width, height), multiples of 32")
        if not self.camera_names:
            raise EasyOccError("model: camera_names is empty")
        self.grid_spec.centres(self.stride_xy, self.stride_z)[:0]  # raises if the strides do not divide the grid
        for name in ("backbone_width", "neck_channels", "voxel_channels", "bev_channels", "bev_blocks"):
            if int(getattr(self, name)) <= 0:
                raise EasyOccError(f"model: {name} must be positive, got {getattr(self, name)}")

    @property
    def grid_spec(self) -> GridSpec:
        """The grid (an alias of `grid`, kept for callers written when it was a dict)."""
        return self.grid

    @property
    def cell_shape(self) -> tuple[int, int, int]:
        """(X / stride_xy, Y / stride_xy, Z / stride_z): the view transform's cell grid."""
        x, y, z = self.grid_spec.shape
        return x // self.stride_xy, y // self.stride_xy, z // self.stride_z

    @property
    def num_cells(self) -> int:
        x, y, z = self.cell_shape
        return x * y * z

    def to_dict(self) -> dict:
        data = asdict(self)
        data["grid"] = self.grid.to_dict()
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Through the one config loader: types checked, unknown keys refused (one line)."""
        return config_system.build(cls, data, where="model")

    def differences(self, other: ModelConfig) -> list[str]:
        """'field: mine != other' for every field that differs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{key}: {mine[key]!r} != {theirs[key]!r}" for key in mine if mine[key] != theirs[key]]


def variant(name: str, **overrides) -> ModelConfig:
    """The two model variants at the deployment resolution (6 x 256 x 704, Occ3D grid).

    compact: ResNet-18 at width 40, folded-height 2-D BEV head (<= 51 GFLOPs, a third of FlashOcc M0);
    paper: EasyOcc's ResNet-101 (torchvision width) with a 3-D CNN head.
    """
    presets = {
        "compact": {},
        "paper": dict(
            head="paper",
            backbone="resnet101",
            backbone_width=64,
            neck_channels=256,
            voxel_channels=64,
            bev_channels=64,
            bev_blocks=2,
        ),
    }
    if name not in presets:
        raise EasyOccError(f"unknown model variant '{name}' ({', '.join(presets)})")
    return ModelConfig(**{**presets[name], **overrides})
