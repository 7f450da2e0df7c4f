"""Simulated foundation models for the synthetic world: its per-image ground truth, corrupted by the
errors real models make.

Depth: a global scale bias, a smooth (low-frequency) relative error, per-pixel noise that grows with
distance, and bleeding at object edges (pixels near a depth discontinuity take a blend of foreground
and background depth: the "flying pixels" of monocular depth). Semantics: boundary errors (pixels near
a class boundary take the neighbouring class), class confusions (whole objects, and blobs of
ground/vegetation classes, swapped with a similar class), and small objects missed (painted with the
surrounding class). Noise is seeded per image, so outputs are reproducible and cacheable.
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass

import cv2
import numpy as np
from easyocc.runtime.contract.classes import CLASS_ID, FREE
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.dataset.nuscenes import aux_path
from easyocc.training.pseudo.providers import DepthEstimator, ImageView, Segmentation, Segmenter

CONFUSIONS = {
    CLASS_ID[a]: CLASS_ID[b]
    for a, b in (
        ("car", "truck"),
        ("truck", "car"),
        ("bus", "truck"),
        ("trailer", "truck"),
        ("construction_vehicle", "truck"),
        ("bicycle", "motorcycle"),
        ("motorcycle", "bicycle"),
        ("pedestrian", "others"),
        ("traffic_cone", "barrier"),
        ("barrier", "manmade"),
        ("sidewalk", "driveable_surface"),
        ("driveable_surface", "sidewalk"),
        ("other_flat", "driveable_surface"),
        ("terrain", "vegetation"),
        ("vegetation", "terrain"),
        ("manmade", "others"),
    )
}
STUFF = tuple(CLASS_ID[n] for n in ("driveable_surface", "other_flat", "sidewalk", "terrain", "vegetation", "manmade"))


@dataclass(frozen=True)
class NoiseModel:
    """Error magnitudes of the simulated providers (see the module docstring)."""

    depth_scale: float = 1.0  # multiplicative bias on all depths
    depth_smooth: float = 0.0  # std of the low-frequency relative depth error
    depth_noise: float = 0.0  # per-pixel relative noise std at 0 m, growing as (1 + d / 20 m)
    edge_px: int = 0  # width of depth bleeding at discontinuities, pixels
    boundary_px: int = 0  # width of semantic boundary errors, pixels
    confusion: float = 0.0  # probability that an object (or a blob of stuff) takes a confused class
    miss_area: float = 0.0  # objects smaller than this fraction of the image ...
    miss_probability: float = 0.0  # ... are missed with this probability


NOISE_PRESETS = {
    "none": NoiseModel(),
    "low": NoiseModel(1.02, 0.02, 0.01, 1, 1, 0.03, 0.0005, 0.3),
    "high": NoiseModel(1.08, 0.06, 0.04, 3, 3, 0.15, 0.002, 0.7),
}


def noise_model(name: str) -> NoiseModel:
    if name not in NOISE_PRESETS:
        raise EasyOccError(f"unknown noise preset '{name}'; known: {', '.join(NOISE_PRESETS)}")
    return NOISE_PRESETS[name]


def _rng(seed: int, view: ImageView, kind: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{kind}/{view.channel}/{view.path.name}".encode())])


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: int = 6) -> np.ndarray:
    """float32 [H, W] zero-mean unit-std noise, smooth over about 1/cells of the image."""
    coarse = rng.standard_normal((cells, cells * 2)).astype(np.float32)
    return cv2.resize(coarse, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def read_ground_truth(view: ImageView, kind: str) -> np.ndarray:
    """The synthetic world's per-image ground truth: 'depth' float32 [H, W] m, 'semantic' uint8,
    'instance' int32 [H, W]."""
    path = aux_path(view.dataset.root, view.path, kind)
    if not path.is_file():
        raise EasyOccError(
            f"no per-image {kind} ground truth for {view.path.name} (expected {path}); simulated providers need a synthetic dataset"
        )
    if kind == "depth":
        with np.load(path) as data:
            array = np.asarray(data["depth_m"], dtype=np.float32)
    else:
        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if array is None:
            raise EasyOccError(f"per-image {kind} ground truth unreadable: {path}")
        array = array.astype(np.uint8 if kind == "semantic" else np.int32)
    if array.shape != view.shape:
        raise EasyOccError(f"per-image {kind} ground truth {path} has shape {array.shape}, image is {view.shape}")
    return array


class SimulatedDepth(DepthEstimator):
    """Ground-truth depth corrupted by `NoiseModel` ('none', 'low' or 'high')."""

    def __init__(self, noise: str = "low", seed: int = 0):
        self.noise_name, self.noise, self.seed = noise, noise_model(noise), int(seed)
        self.name = "ground-truth" if noise == "none" else f"simulated-{noise}"

    def options(self) -> dict:
        return {"noise": asdict(self.noise), "seed": self.seed}

    def estimate(self, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        depth = read_ground_truth(view, "depth")
        noise = self.noise
        if noise == NOISE_PRESETS["none"]:
            return depth
        rng = _rng(self.seed, view, "depth")
        valid = depth > 0
        if noise.edge_px:
            depth = _bleed_edges(depth, valid, noise.edge_px)
        relative = noise.depth_smooth * _smooth_field(rng, depth.shape)
        relative += noise.depth_noise * (1 + depth / 20.0) * rng.standard_normal(depth.shape).astype(np.float32)
        out = depth * noise.depth_scale * np.exp(relative)
        return np.where(valid, out, 0).astype(np.float32)


class SimulatedRelativeDepth(SimulatedDepth):
    """The relative mode: `SimulatedDepth`'s corrupted depth (edge bleeding, smooth error, noise) as a
    relative model outputs it, affine-invariant disparity with a seeded per-image scale and shift
    (`relative.scramble_disparity`); sky is inverse depth 0. Needs `aligned-`."""

    relative = True

    def __init__(self, noise: str = "low", seed: int = 0):
        super().__init__(noise, seed)
        self.name = f"simulated-relative-{noise}"

    def estimate(self, image_rgb: np.ndarray, view: ImageView) -> np.ndarray:
        from easyocc.training.pseudo.relative import image_rng, scramble_disparity

        depth = super().estimate(image_rgb, view)
        return scramble_disparity(depth, image_rng(self.seed, view, "simulated-relative"))[0]


def _bleed_edges(depth: np.ndarray, valid: np.ndarray, width: int) -> np.ndarray:
    """Blend depth across discontinuities: pixels within `width` of a jump take a local mean."""
    log_depth = np.log(np.where(valid, depth, 1.0))
    kernel = np.ones((3, 3), np.uint8)
    jump = (cv2.dilate(log_depth, kernel) - cv2.erode(log_depth, kernel)) > 0.15
    near = cv2.dilate(jump.astype(np.uint8), kernel, iterations=width).astype(bool) & valid
    size = 2 * width + 1
    total = cv2.boxFilter(np.where(valid, depth, 0), -1, (size, size), normalize=False)
    count = cv2.boxFilter(valid.astype(np.float32), -1, (size, size), normalize=False)
    blended = total / np.maximum(count, 1)
    return np.where(near, blended, depth).astype(np.float32)


class SimulatedSegmenter(Segmenter):
    """Ground-truth semantics corrupted by `NoiseModel` ('none', 'low' or 'high'); sky stays free."""

    def __init__(self, noise: str = "low", seed: int = 0):
        self.noise_name, self.noise, self.seed = noise, noise_model(noise), int(seed)
        self.name = "ground-truth" if noise == "none" else f"simulated-{noise}"

    def options(self) -> dict:
        return {"noise": asdict(self.noise), "seed": self.seed}

    def segment(self, image_rgb: np.ndarray, view: ImageView) -> Segmentation:
        classes = read_ground_truth(view, "semantic").copy()
        noise = self.noise
        score = np.ones(classes.shape, np.float32)
        if noise == NOISE_PRESETS["none"]:
            return Segmentation(classes, score)
        rng = _rng(self.seed, view, "semantic")
        instance = read_ground_truth(view, "instance")
        sky = classes == FREE
        # Missed small objects and confused objects, one decision per instance.
        area_limit = noise.miss_area * classes.size
        ids, counts = np.unique(instance[instance > 0], return_counts=True)
        for instance_id, count in zip(ids, counts):
            pixels = instance == instance_id
            if count < area_limit and rng.random() < noise.miss_probability:
                classes[pixels] = _surrounding_class(classes, pixels)
            elif rng.random() < noise.confusion:
                majority = np.bincount(classes[pixels]).argmax()
                classes[pixels] = CONFUSIONS.get(int(majority), majority)
        # Blobs of stuff classes confused with their neighbour class.
        blobs = _smooth_field(rng, classes.shape, cells=4) > _normal_quantile(1 - noise.confusion)
        for stuff in STUFF:
            classes[blobs & (classes == stuff)] = CONFUSIONS[stuff]
        if noise.boundary_px:
            classes = _boundary_errors(classes, noise.boundary_px, rng)
        classes[sky] = FREE  # sky pixels have no depth anyway; keep them sky
        score[classes != read_ground_truth(view, "semantic")] = 0.5
        return Segmentation(classes, score)


def _surrounding_class(classes: np.ndarray, pixels: np.ndarray) -> int:
    ring = cv2.dilate(pixels.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~pixels
    values = classes[ring]
    values = values[values != FREE]
    return int(np.bincount(values).argmax()) if values.size else int(CLASS_ID["others"])


def _boundary_errors(classes: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """Pixels within `width` of a class boundary take the class of a randomly offset neighbour."""
    dy, dx = rng.integers(-width, width + 1, size=2)
    shifted = np.roll(classes, (int(dy), int(dx)), axis=(0, 1))
    flip = (shifted != classes) & (rng.random(classes.shape) < 0.5)
    return np.where(flip, shifted, classes).astype(np.uint8)


def _normal_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(min(max(p, 1e-6), 1 - 1e-6))
