"""The runner interface every backend implements (after Polygraphy): activate, infer(feed), deactivate.

A runner owns one loaded model. `infer` takes {input name: numpy array} and returns {output name:
numpy array}; before running it checks names, dtypes and shapes against the model's manifest.
Inputs that stay constant for a rig (the view-transform tables) may be given once with
`set_static`, so a GPU backend uploads them once instead of every frame.
"""

from __future__ import annotations

import numpy as np
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import Manifest, TensorSpec


class Runner:
    """Base class: context-manager lifecycle, feed validation, static inputs. Subclasses implement
    `_activate`, `_infer(feed) -> {name: array}`, `_deactivate`, and set `self.manifest` in `_activate`
    at the latest."""

    name = "runner"
    # True for a backend that computes on the host's own CPU cores (set by the subclasses that do): the
    # runtime then lowers the priority of the host work it does ahead of the backend (ahead_priority).
    on_host_cpu = False

    def __init__(self):
        self.manifest: Manifest | None = None
        self.is_active = False
        self._static: dict[str, np.ndarray] = {}

    # --- lifecycle -------------------------------------------------------------------------------
    def activate(self) -> Runner:
        if not self.is_active:
            self._activate()
            if self.manifest is None:
                raise EasyOccError(f"{self.name}: backend did not provide a manifest")
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self.is_active = False
            self._static = {}
            self._deactivate()

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    # --- inference -------------------------------------------------------------------------------
    def set_static(self, feed: dict[str, np.ndarray]) -> None:
        """Inputs that stay the same until the next call (per rig); validated now, reused by `infer`."""
        self._require_active()
        for name, array in feed.items():
            check_tensor(self.manifest.input(name), array, self.name)
        self._static = {**self._static, **{k: np.ascontiguousarray(v) for k, v in feed.items()}}
        self._static_changed(set(feed))

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on `feed` (plus static inputs) -> {output name: array}, checked against the manifest."""
        self._require_active()
        checked = set(self._static) - set(feed)  # static inputs were checked by set_static
        full = check_feed(self.manifest, {**self._static, **feed}, self.name, checked)
        outputs = self._infer(full)
        return check_outputs(self.manifest, outputs, self.name)

    def _require_active(self) -> None:
        if not self.is_active:
            raise EasyOccError(f"{self.name}: runner is not active (use it as a context manager or call activate())")

    def _static_changed(self, names: set[str]) -> None:
        """Hook: a GPU backend re-uploads these inputs."""

    # --- to implement ------------------------------------------------------------------------------
    def _activate(self) -> None:
        raise NotImplementedError

    def _deactivate(self) -> None:
        raise NotImplementedError

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError


def check_tensor(spec: TensorSpec, array, who: str) -> np.ndarray:
    """Raise unless `array` is a numpy array of the spec's dtype and shape, finite if floating point."""
    if not isinstance(array, np.ndarray):
        raise EasyOccError(f"{who}: input '{spec.name}' must be a numpy array, got {type(array).__name__}")
    if array.dtype != np.dtype(spec.dtype):
        raise EasyOccError(f"{who}: input '{spec.name}' has dtype {array.dtype}, the model expects {spec.dtype}")
    if tuple(array.shape) != tuple(spec.shape):
        raise EasyOccError(
            f"{who}: input '{spec.name}' has shape {list(array.shape)}, the model expects {list(spec.shape)}"
        )
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise EasyOccError(f"{who}: input '{spec.name}' contains NaN or inf")
    return array


def check_feed(manifest: Manifest, feed: dict, who: str, checked=frozenset()) -> dict[str, np.ndarray]:
    """Every manifest input present with the right dtype and shape (finite floats), nothing else;
    C-contiguous arrays. Inputs named in `checked` were validated before and are only looked up.
    The one feed check: runners, the comparator and the INT8 calibrator all use it."""
    expected = [spec.name for spec in manifest.inputs]
    unknown = sorted(set(feed) - set(expected))
    missing = [name for name in expected if name not in feed]
    if unknown or missing:
        raise EasyOccError(
            f"{who}: feed is missing inputs {missing or 'none'} and has unknown inputs {unknown or 'none'}"
        )
    return {
        spec.name: np.ascontiguousarray(
            feed[spec.name] if spec.name in checked else check_tensor(spec, feed[spec.name], who)
        )
        for spec in manifest.inputs
    }


def check_outputs(manifest: Manifest, outputs: dict, who: str) -> dict[str, np.ndarray]:
    """Every manifest output present with the stated dtype and shape."""
    for spec in manifest.outputs:
        if spec.name not in outputs:
            raise EasyOccError(f"{who}: model did not return output '{spec.name}'")
        array = outputs[spec.name]
        if array.dtype != np.dtype(spec.dtype) or tuple(array.shape) != tuple(spec.shape):
            raise EasyOccError(
                f"{who}: output '{spec.name}' is {array.dtype} {list(array.shape)}, "
                f"the manifest says {spec.dtype} {list(spec.shape)}"
            )
    return outputs


def check_manifest_io(manifest: Manifest, actual_inputs: dict, actual_outputs: dict, who: str) -> None:
    """Compare the model's real tensors {name: (dtype str, shape tuple)} with its manifest."""
    for kind, specs, actual in (
        ("input", manifest.inputs, actual_inputs),
        ("output", manifest.outputs, actual_outputs),
    ):
        stated = {s.name: (s.dtype, tuple(s.shape)) for s in specs}
        if set(stated) != set(actual):
            raise EasyOccError(f"{who}: model {kind}s {sorted(actual)} differ from its manifest's {sorted(stated)}")
        for name, (dtype, shape) in actual.items():
            if (dtype, tuple(shape)) != stated[name]:
                raise EasyOccError(
                    f"{who}: {kind} '{name}' is {dtype} {list(shape)} in the model, "
                    f"{stated[name][0]} {list(stated[name][1])} in its manifest"
                )


def check_contract(manifest: Manifest, who: str) -> None:
    """The manifest describes a model this runtime can run: classes, grid-shaped outputs, table sizes."""
    from easyocc.runtime.contract.manifest import (
        INPUT_IMAGES,
        INPUT_VT_UV,
        INPUT_VT_WEIGHTS,
        OUTPUT_CONFIDENCE,
        OUTPUT_SEMANTICS,
    )

    try:
        manifest.check_classes()
        manifest.check_meaning()
    except EasyOccError as exc:
        raise EasyOccError(f"{who}: {exc}") from None
    grid = manifest.grid
    n_cam = len(manifest.camera_names)
    width, height = manifest.input_size
    n_cell = manifest.view_transform.num_cells(grid)
    # Images at the network size, or, for a model that resizes inside its graph (export
    # --resize-in-graph), at the cameras' resolution: at least the network size on both axes.
    image_height, image_width = height, width
    images = next((s for s in manifest.inputs if s.name == INPUT_IMAGES), None)
    if images is not None and len(images.shape) == 4 and images.shape[1] >= height and images.shape[2] >= width:
        image_height, image_width = int(images.shape[1]), int(images.shape[2])
    expected_inputs = {
        INPUT_IMAGES: ("uint8", (n_cam, image_height, image_width, 3)),
        INPUT_VT_UV: ("float32", (n_cam, n_cell, 2)),
        INPUT_VT_WEIGHTS: ("float32", (n_cam, n_cell)),
    }
    expected_outputs = {OUTPUT_SEMANTICS: ("uint8", grid.shape), OUTPUT_CONFIDENCE: ("float32", grid.shape)}
    for kind, specs, expected in (
        ("input", manifest.inputs, expected_inputs),
        ("output", manifest.outputs, expected_outputs),
    ):
        stated = {s.name: (s.dtype, tuple(s.shape)) for s in specs}
        for name, (dtype, shape) in expected.items():
            if stated.get(name) != (dtype, tuple(shape)):
                have = f"{stated[name][0]} {list(stated[name][1])}" if name in stated else "absent"
                raise EasyOccError(
                    f"{who}: manifest {kind} '{name}' is {have}, the runtime contract for {n_cam} cameras at "
                    f"{width}x{height} and grid {grid.describe()} needs {dtype} {list(shape)}"
                )
