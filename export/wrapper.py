"""The deploy wrapper: the torch model behind the deployed model's contract (docs/CONTRACTS.md).

in:  images uint8 [N_cam, H, W, 3] RGB, vt_uv float32 [N_cam, N_cell, 2], vt_weights float32 [N_cam, N_cell]
out: semantics uint8 [X, Y, Z], confidence float32 [X, Y, Z] (softmax probability of the chosen class)

Normalisation and layout change are the model's own (inside its forward); this wrapper adds the batch
axis and the argmax. The argmax is written without ONNX ArgMax: ArgMax yields INT64 indices, which
TensorRT 8.x narrows silently and which would put an INT64 tensor on the output path. Instead the
class index is the smallest class id whose logit equals the maximum (exactly what argmax returns,
ties included), computed in float and cast once to UINT8 as the graph's last node, the only place
TensorRT accepts a UINT8 tensor.

With `camera_size` (export --resize-in-graph) the images come in at the cameras' resolution and the
graph resizes them (`GraphResize`), so a raw camera frame needs no work on the CPU.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from easyocc.runtime.contract.errors import EasyOccError
from torch import nn


def area_weights(size_in: int, size_out: int) -> np.ndarray:
    """float32 [size_in, size_out]: the weights of an area-averaging shrink along one axis, as
    cv2.INTER_AREA computes them: output pixel j averages the input interval [j, j + 1) * size_in /
    size_out, partial pixels weighted by their coverage. Integer arithmetic, so the weights are exact."""
    if size_out > size_in:
        raise EasyOccError(f"area resize shrinks only: {size_in} -> {size_out} pixels")
    weights = np.zeros((size_in, size_out), np.float64)
    for j in range(size_out):  # in units of 1 / size_out input pixels: output j covers [j * size_in, (j + 1) * size_in)
        start, stop = j * size_in, (j + 1) * size_in
        for i in range(start // size_out, -(-stop // size_out)):
            overlap = min(stop, (i + 1) * size_out) - max(start, i * size_out)
            if overlap > 0:
                weights[i, j] = overlap / size_in
    return weights.astype(np.float32)


class GraphResize(nn.Module):
    """float images [N, Hc, Wc, 3] at camera resolution -> [N, h, w, 3] at the network size, the
    anti-aliased area resize of the CPU path (cv2.INTER_AREA) computed exactly inside the graph.

    Each axis is a matrix product with the area weights. The weights are block-diagonal: with g =
    gcd(Wc, w), every block of Wc / g input pixels maps onto its own w / g output pixels (1600 -> 704:
    64 blocks of 25 -> 11), so the axis is reshaped into blocks and multiplied by one small matrix
    (MatMul and Reshape, TensorRT-native; 1.0 GMAC for six 1600x900 images to 704x256, instead of 12
    for the dense product). Rounded at the end, as the uint8 pixels of the CPU path are. A bilinear
    Resize + average pool instead costs less but changed 0.1 % of the bundled model's voxels on
    scene-0916, at the 99.9 % parity bar; this one matches cv2 to 0.0001 % of the pixels."""

    def __init__(self, camera_size: tuple[int, int], input_size: tuple[int, int]):
        super().__init__()
        (width, height), (net_width, net_height) = camera_size, input_size
        if width < net_width or height < net_height:
            raise EasyOccError(
                f"in-graph resize shrinks only: camera images {width}x{height} are smaller than the network's "
                f"{net_width}x{net_height}"
            )
        self.camera_size, self.input_size = (int(width), int(height)), (int(net_width), int(net_height))
        self.blocks = {}
        for axis, (size_in, size_out) in (("x", (width, net_width)), ("y", (height, net_height))):
            g = math.gcd(size_in, size_out)
            self.register_buffer(f"weights_{axis}", torch.from_numpy(area_weights(size_in // g, size_out // g)))
            self.blocks[axis] = (g, size_in // g, size_out // g)

    @staticmethod
    def _axis(x: torch.Tensor, weights: torch.Tensor, blocks: tuple[int, int, int]) -> torch.Tensor:
        """Area-resize the last axis of x [N, C, A, L]: L = blocks * block_in -> blocks * block_out."""
        count, block_in, block_out = blocks
        n, c, a, _ = x.shape
        if block_in == block_out:
            return x
        x = x.reshape(n, c, a, count, block_in)
        return torch.matmul(x, weights).reshape(n, c, a, count * block_out)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._axis(images.permute(0, 3, 1, 2), self.weights_x, self.blocks["x"])  # [N, 3, Hc, w]
        x = self._axis(x.transpose(2, 3), self.weights_y, self.blocks["y"])  # [N, 3, w, h]
        return torch.round(x).permute(0, 3, 2, 1)  # [N, h, w, 3]


class DeployWrapper(nn.Module):
    """Wraps a model whose forward(images [B,N,H,W,3] u8, vt_uv [B,N,C,2], vt_weights [B,N,C]) -> logits
    [B, K, X, Y, Z] into the unbatched deployed-model contract above. camera_size and input_size
    ((width, height) each): images arrive at camera_size and are resized in the graph to input_size."""

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        camera_size: tuple[int, int] | None = None,
        input_size: tuple[int, int] | None = None,
    ):
        super().__init__()
        if num_classes > 255:
            raise EasyOccError(f"{num_classes} classes do not fit the uint8 semantics output")
        self.model = model
        self.resize = GraphResize(camera_size, input_size) if camera_size is not None else None
        self.num_classes = int(num_classes)
        # [K, 1, 1, 1] float class ids, broadcast over the grid.
        self.register_buffer("class_ids", torch.arange(num_classes, dtype=torch.float32).view(-1, 1, 1, 1))

    def forward(self, images: torch.Tensor, vt_uv: torch.Tensor, vt_weights: torch.Tensor):
        # Cast first: TensorRT accepts a UINT8 tensor only as a network input feeding a Cast, so no
        # reshape or unsqueeze may touch the uint8 images (the model's own .float() becomes a no-op).
        images = images.float()
        if self.resize is not None:
            images = self.resize(images)
        images = images.unsqueeze(0)
        logits = self.model(images, vt_uv.unsqueeze(0), vt_weights.unsqueeze(0))[0]
        return semantics_and_confidence(logits.float(), self.class_ids)


def wrapper_for(model: nn.Module, manifest) -> DeployWrapper:
    """The deploy wrapper a manifest describes: with the in-graph resize when its images input is at
    camera resolution (larger than the network's input_size)."""
    if isinstance(model, DeployWrapper):
        return model
    from easyocc.runtime.contract.manifest import INPUT_IMAGES

    _, height, width, _ = manifest.input(INPUT_IMAGES).shape
    camera_size = (width, height) if (width, height) != tuple(manifest.input_size) else None
    return DeployWrapper(model, len(manifest.class_names), camera_size, tuple(manifest.input_size))


def in_graph_resize_manifest(manifest, camera_size: tuple[int, int]):
    """The manifest of the same model exported with the in-graph resize: images uint8 [N_cam, Hc, Wc, 3]."""
    from dataclasses import replace

    from easyocc.runtime.contract.manifest import INPUT_IMAGES, TensorSpec

    width, height = (int(v) for v in camera_size)
    GraphResize((width, height), manifest.input_size)  # refuses an enlarging resize
    inputs = tuple(
        TensorSpec(spec.name, spec.dtype, (spec.shape[0], height, width, 3)) if spec.name == INPUT_IMAGES else spec
        for spec in manifest.inputs
    )
    return replace(manifest, inputs=inputs)


def semantics_and_confidence(logits: torch.Tensor, class_ids: torch.Tensor):
    """logits float [K, X, Y, Z] -> (semantics uint8 [X, Y, Z], confidence float32 [X, Y, Z]).

    confidence = softmax(logits)[argmax] = 1 / sum_k exp(logit_k - max_logit), with no [K, X, Y, Z]
    probability tensor materialised beyond the exp.
    """
    top = torch.amax(logits, dim=0, keepdim=True)
    confidence = 1.0 / torch.sum(torch.exp(logits - top), dim=0)
    is_top = logits >= top
    fallback = torch.full_like(class_ids, float(class_ids.shape[0]))
    index = torch.amin(torch.where(is_top, class_ids, fallback), dim=0)
    return index.to(torch.uint8), confidence


class HalfTables(nn.Module):
    """The deploy wrapper with its float inputs (the view-transform tables) rounded through float16 first,
    as an FP16 engine receives them (for the FP16 emulation of `easyocc.export.fp16_check`)."""

    def __init__(self, wrapper: nn.Module):
        super().__init__()
        self.inner = wrapper

    def forward(self, images: torch.Tensor, vt_uv: torch.Tensor, vt_weights: torch.Tensor):
        return self.inner(images, vt_uv.half().float(), vt_weights.half().float())
