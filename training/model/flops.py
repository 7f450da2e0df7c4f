"""FLOPs (torch.utils.flop_counter) and parameters of model configs, for `easyocc report`.

Counted on the meta device (no memory, no compute), so the paper variant at full size takes well
under a second. torch counts 2 FLOPs per multiply-add; mmcv-based papers (FlashOcc's 154 G for M0)
report multiply-adds as "FLOPs", so both figures are given. GridSample and resizes are not
counted (torch has no FLOP formula for them; they are small next to the convolutions).
"""

from __future__ import annotations

import torch
from easyocc.training.model.config import ModelConfig
from easyocc.training.model.network import build_model

COMPACT_BUDGET_GFLOPS = 51.0  # a third of FlashOcc M0's 154 G


def count(config: ModelConfig) -> dict:
    """{"gflops", "gmacs", "params_m", "per_module": {name: gflops}} for one forward at batch 1."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = build_model(config).eval()
        width, height = config.input_size
        cameras = len(config.camera_names)
        images = torch.zeros(1, cameras, height, width, 3, dtype=torch.uint8)
        vt_uv = torch.zeros(1, cameras, config.num_cells, 2)
        vt_weights = torch.zeros(1, cameras, config.num_cells)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(images, vt_uv, vt_weights)
    flops = counter.get_total_flops()
    per_module = {
        name.removeprefix("EasyOccNet."): sum(values.values()) / 1e9
        for name, values in counter.get_flop_counts().items()
        if name.count(".") == 1
    }
    return {
        "gflops": flops / 1e9,
        "gmacs": flops / 2e9,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "per_module": per_module,
    }


def report(configs: dict[str, ModelConfig]) -> dict:
    rows = {}
    for name, config in configs.items():
        width, height = config.input_size
        rows[name] = {
            **count(config),
            "input": f"{len(config.camera_names)}x{height}x{width}",
            "grid": list(config.grid_spec.shape),
            "cells": list(config.cell_shape),
            "backbone": f"{config.backbone} width {config.backbone_width}",
            "head": config.head,
        }
    return rows


def format_table(rows: dict) -> str:
    lines = [f"{'variant':<10}{'input':>12}{'backbone':>22}{'head':>9}{'GFLOPs':>9}{'GMACs':>8}{'params M':>10}"]
    for name, row in rows.items():
        lines.append(
            f"{name:<10}{row['input']:>12}{row['backbone']:>22}{row['head']:>9}"
            f"{row['gflops']:>9.1f}{row['gmacs']:>8.1f}{row['params_m']:>10.2f}"
        )
    lines.append("GFLOPs: torch.utils.flop_counter (2 per multiply-add); GMACs: the mmcv 'FLOPs' of FlashOcc's 154 G.")
    return "\n".join(lines)
