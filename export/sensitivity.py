"""Per-layer-group INT8 sensitivity: what each group of convolutions costs in class agreement.

The model is calibrated once (ONNX Runtime's calibration cache); then, for every layer group (the
convolutions under one module scope, e.g. '/model/backbone/layer2/'), two Q/DQ variants are built
from the same ranges: only that group quantized ("alone": the damage the group does by itself),
and everything but that group quantized ("kept": what keeping it in higher precision buys back).
Each variant runs through the runtime's ONNX Runtime runner and the one comparator against the
float model on the same frames.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from easyocc.export.onnx_model import load_onnx, read_manifest
from easyocc.export.quantize import QUANTIZED_OP_TYPES, Int8Options, calibration_feeds, kept_out_nodes, run_quantizer
from easyocc.runtime.contract.errors import EasyOccError

GROUP_DEPTH = 4  # '', 'model', package, module: '/model/backbone/layer2/'
CHUNK = 4  # candidate sessions alive at once (memory)


def layer_groups(model, excluded=()) -> dict[str, list[str]]:
    """Module scope -> names of its quantizable nodes, in graph order, `excluded` names left out."""
    groups: dict[str, list[str]] = {}
    skip = set(excluded)
    for node in load_onnx(model).graph.node:
        if node.op_type not in QUANTIZED_OP_TYPES or node.name in skip:
            continue
        parts = node.name.split("/")[:-1]
        scope = "/".join(parts[:GROUP_DEPTH]) + "/" if len(parts) > 1 else node.name
        groups.setdefault(scope, []).append(node.name)
    return groups


def conv_macs(model) -> dict[str, int]:
    """Multiply-accumulates of every convolution (static shapes, after shape inference)."""
    import onnx

    model = onnx.shape_inference.infer_shapes(load_onnx(model))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.value_info}
    shapes.update({v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in model.graph.output})
    weights = {init.name: list(init.dims) for init in model.graph.initializer}
    macs = {}
    for node in model.graph.node:
        if node.op_type == "Conv" and node.input[1] in weights and node.output[0] in shapes:
            out = shapes[node.output[0]]
            macs[node.name] = int(
                np.prod(weights[node.input[1]], dtype=np.int64) * np.prod(out[2:], dtype=np.int64) * out[0]
            )
    return macs


def add_macs_share(report: dict, model) -> dict:
    """Each group row of a sensitivity report gets `macs_share`: its part of all convolution MACs."""
    macs = conv_macs(model)
    total = sum(macs.values()) or 1
    groups = layer_groups(model)
    for row in report["groups"]:
        row["macs_share"] = sum(macs.get(name, 0) for name in groups.get(row["group"], [])) / total
    return report


@dataclass(frozen=True)
class GroupSensitivity:
    """One group: its nodes; agreement with float when only it is quantized, and when all but it are."""

    group: str
    nodes: int
    alone_agreement: float
    alone_max_confidence_diff: float
    kept_agreement: float

    def to_dict(self) -> dict:
        return {
            "group": self.group,
            "nodes": self.nodes,
            "only_this_group_quantized": {
                "agreement": self.alone_agreement,
                "max_confidence_diff": self.alone_max_confidence_diff,
            },
            "all_but_this_group_quantized": {"agreement": self.kept_agreement},
        }


def sensitivity(
    onnx_path, data, eval_feeds, options: Int8Options | None = None, threads=None, log=None, target=None
) -> dict:
    """Calibrate on `options.frames` frames of `data`, then measure every layer group on `eval_feeds`
    ((source, feed) pairs). Returns the full-model agreement and one GroupSensitivity per group,
    most damaging first. With a `target` agreement, also keeps groups in float one by one, most
    damaging first, until the rest reaches it ("keep_to_reach_target": the --keep prefixes)."""
    from easyocc.runtime.backends import create_runner
    from easyocc.runtime.backends.compare import compare_runners

    options = options or Int8Options()
    onnx_path = Path(onnx_path)
    manifest = read_manifest(onnx_path)
    kept = kept_out_nodes(onnx_path, options.keep, options.fp16_modules)
    excluded = {name for names in kept.values() for name in names}
    groups = layer_groups(onnx_path, excluded)
    if not groups:
        raise EasyOccError(f"{onnx_path}: no quantizable node ({', '.join(QUANTIZED_OP_TYPES)}) left")
    eval_feeds = list(eval_feeds)
    with tempfile.TemporaryDirectory(prefix="easyocc-int8-sens-") as tmp:
        tmp = Path(tmp)
        cache = tmp / "ranges.json"
        feeds = calibration_feeds(manifest, data, options.frames, options.stride, options.start)
        if log:
            log(f"calibrating once on {len(feeds)} frames; {len(groups)} layer groups")
        run_quantizer(onnx_path, tmp / "all.onnx", feeds, manifest, kept, options.method, cache)
        variants = [("all", tmp / "all.onnx")]
        all_nodes = {name for names in groups.values() for name in names}
        for index, (group, names) in enumerate(groups.items()):
            others = sorted(all_nodes - set(names))
            for kind, extra in (("alone", others), ("kept", names)):
                path = tmp / f"{index}-{kind}.onnx"
                run_quantizer(onnx_path, path, None, None, {**kept, "sensitivity": extra}, options.method, cache)
                variants.append((f"{group}|{kind}", path))
        reports = {}
        for start in range(0, len(variants), CHUNK):
            chunk = variants[start : start + CHUNK]
            runners = [create_runner(onnx_path, "onnxruntime", threads=threads, providers=["CPUExecutionProvider"])]
            runners += [
                create_runner(p, "onnxruntime", threads=threads, providers=["CPUExecutionProvider"]) for _, p in chunk
            ]
            labels = ["float"] + [label for label, _ in chunk]
            for label, report in zip(labels[1:], compare_runners(runners, eval_feeds, labels=labels)):
                reports[label] = report
            if log:
                log(f"sensitivity: {min(start + CHUNK, len(variants))}/{len(variants)} variants measured")
        order = sorted(groups, key=lambda group: reports[f"{group}|alone"].agreement)
        greedy = None
        if target is not None:
            quantize = lambda path, extra: run_quantizer(  # noqa: E731
                onnx_path, path, None, None, {**kept, "sensitivity": extra}, options.method, cache
            )
            greedy = _keep_until(onnx_path, groups, order, quantize, tmp, eval_feeds, target, threads, log)
    rows = [
        GroupSensitivity(
            group=group,
            nodes=len(names),
            alone_agreement=reports[f"{group}|alone"].agreement,
            alone_max_confidence_diff=reports[f"{group}|alone"].max_confidence_diff,
            kept_agreement=reports[f"{group}|kept"].agreement,
        )
        for group, names in groups.items()
    ]
    rows.sort(key=lambda row: row.alone_agreement)
    full = reports["all"]
    return add_macs_share(
        {
            "model": str(onnx_path),
            "model_version": manifest.model_version,
            "calibration": {
                "method": options.method,
                "frames": options.frames,
                "stride": options.stride,
                "start": options.start,
                "data": str(data),
            },
            "eval_frames": {
                s: sum(f.source == s for f in full.frames) for s in sorted({f.source for f in full.frames})
            },
            "kept_out": {reason: names for reason, names in kept.items() if names},
            "all_groups_quantized": {
                "agreement": full.agreement,
                "worst_frame_agreement": full.worst_frame_agreement,
                "max_confidence_diff": full.max_confidence_diff,
            },
            "groups": [row.to_dict() for row in rows],
            "keep_to_reach_target": greedy,
        },
        onnx_path,
    )


def _keep_until(onnx_path, groups, order, quantize, tmp: Path, feeds, target: float, threads, log) -> dict:
    """Keep groups in float in `order` until the agreement with float reaches `target`."""
    from easyocc.runtime.backends import create_runner
    from easyocc.runtime.backends.compare import compare_runners

    total = sum(len(names) for names in groups.values())
    steps, kept_groups = [], []
    for group in order:
        kept_groups.append(group)
        extra = [name for g in kept_groups for name in groups[g]]
        path = tmp / f"keep-{len(kept_groups)}.onnx"
        quantize(path, extra)
        runners = [
            create_runner(p, "onnxruntime", threads=threads, providers=["CPUExecutionProvider"])
            for p in (onnx_path, path)
        ]
        (report,) = compare_runners(runners, feeds, labels=["float", f"{len(kept_groups)} group(s) kept"])
        steps.append(
            {"kept_in_float": list(kept_groups), "int8_convolutions": total - len(extra), "agreement": report.agreement}
        )
        if log:
            log(
                f"keeping {len(kept_groups)} group(s) in float ({group} last): agreement {100 * report.agreement:.3f} %"
            )
        if report.agreement >= target:
            break
    reached = steps[-1]["agreement"] >= target
    return {"target": target, "reached": reached, "keep": kept_groups if reached else None, "steps": steps}


def table(report: dict) -> str:
    """A Markdown table of a sensitivity report, most damaging group first."""
    lines = [
        "| layer group | convs | share of conv MACs | agreement, only this group INT8 | agreement, all but this group INT8 |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in report["groups"]:
        alone = row["only_this_group_quantized"]["agreement"]
        kept = row["all_but_this_group_quantized"]["agreement"]
        share = f"{100 * row['macs_share']:.1f} %" if "macs_share" in row else ""
        lines.append(f"| `{row['group']}` | {row['nodes']} | {share} | {100 * alone:.3f} % | {100 * kept:.3f} % |")
    full = report["all_groups_quantized"]["agreement"]
    lines.append(f"| all groups INT8 | | 100 % | {100 * full:.3f} % | |")
    return "\n".join(lines)
