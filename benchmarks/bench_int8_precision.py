"""FP32 vs FP16 (emulated) vs INT8 Q/DQ for one model, measured on the CPU: the numbers of
docs/readme/export.md ("INT8: explicit quantization") and docs/results/int8.json.

    .venv/bin/python benchmarks/bench_int8_precision.py --data ../shared/data/nuscenes-scene-0916 \\
        --out runs/int8 --json docs/results/int8.json

For each calibration window (`--starts`: 16 key frames at stride 2 from that key frame, real
frames) it runs `easyocc export int8` as a user would (the held-out real frames between the
calibration frames give the agreement; the first window also runs `--sensitivity`). Then the float
model (ONNX Runtime), the FP16 emulation of its checkpoint (`fp16_check.fp16_emulation_runner`) and
every INT8 model run on a held-out synthetic scene (made with `easyocc synth` when absent, a seed
no training run used): class agreement with float through the one comparator, and mIoU / RayIoU
against the scene's ground truth through `score_predictions`. Model sizes are file sizes.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from easyocc.export.int8_check import score_runner
from easyocc.export.onnx_model import load_onnx, read_manifest
from easyocc.models import bundled_model
from easyocc.runtime.backends import create_runner
from easyocc.runtime.backends.compare import compare_runners
from easyocc.runtime.contract.fileio import write_json_atomic

HELDOUT_SYNTH = ("--scenes", "1", "--frames", "8", "--size", "352x128", "--seed", "1717", "--no-aux")


def easyocc(*args: str) -> int:
    print("$ easyocc " + " ".join(shlex.quote(a) for a in args), flush=True)
    return subprocess.run([sys.executable, "-m", "easyocc", *args], check=False).returncode


def fp16_weight_bytes(onnx_path) -> int:
    """File size with every float32 initializer stored as float16 (what an FP16 engine keeps)."""
    model = load_onnx(onnx_path)
    floats = sum(np.prod(init.dims, dtype=np.int64) * 4 for init in model.graph.initializer if init.data_type == 1)
    return int(Path(onnx_path).stat().st_size - floats // 2)


def headline(scores: dict) -> dict:
    keys = ("miou", "miou_star", "geometry_iou", "rayiou", "rayiou@1", "rayiou@2", "rayiou@4")
    return {key: scores[key] for key in keys if scores.get(key) is not None and np.isfinite(scores[key])}


CONFIDENCE_BINS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.8, 1.01)


def flips_by_confidence(reference, candidate, feeds) -> list[dict]:
    """Where the classes flip: per bin of the reference's confidence, the share of voxels in the bin
    and the fraction of them whose class the candidate changes (over all feeds)."""
    edges = np.asarray(CONFIDENCE_BINS)
    voxels, flips = np.zeros(len(edges) - 1), np.zeros(len(edges) - 1)
    with reference, candidate:
        for _, feed in feeds:
            ref, cand = reference.infer(feed), candidate.infer(feed)
            index = np.digitize(ref["confidence"].ravel(), edges) - 1
            changed = (ref["semantics"] != cand["semantics"]).ravel()
            voxels += np.bincount(index, minlength=len(voxels))[: len(voxels)]
            flips += np.bincount(index, weights=changed, minlength=len(voxels))[: len(voxels)]
    return [
        {"confidence": [float(lo), float(min(hi, 1.0))], "share": v / voxels.sum(), "flip_rate": f / v if v else None}
        for lo, hi, v, f in zip(edges[:-1], edges[1:], voxels, flips)
    ]


def spread(values) -> dict:
    values = [float(v) for v in values]
    return {"mean": float(np.mean(values)), "min": min(values), "max": max(values), "std": float(np.std(values))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(bundled_model(".onnx")), help="float ONNX (default: bundled)")
    parser.add_argument("--checkpoint", default=str(bundled_model(".pt")), help="its checkpoint (FP16 emulation)")
    parser.add_argument("--data", required=True, help="real calibration dataset (scene-0916)")
    parser.add_argument("--heldout", help="synthetic held-out dataset (default: OUT/synth_heldout, generated)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--starts", type=int, nargs="+", default=[0, 4, 10], help="calibration windows")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--eval-frames", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-sensitivity", action="store_true", help="skip the per-group report (smoke runs)")
    parser.add_argument("--keep", action="append", default=[], help="passed to easyocc export int8 (repeatable)")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    heldout = Path(args.heldout or out / "synth_heldout")
    if not heldout.exists():
        if easyocc("synth", "--out", str(heldout), *HELDOUT_SYNTH, "--quiet") != 0:
            raise SystemExit("easyocc synth failed")
    manifest = read_manifest(args.model)

    exports = {}
    for index, start in enumerate(args.starts):
        path, report = out / f"int8_start{start}.onnx", out / f"export_start{start}.json"
        command = ["export", "int8", "--model", args.model, "--data", args.data, "--out", str(path)]
        command += ["--frames", str(args.frames), "--stride", "2", "--start", str(start)]
        command += ["--eval-frames", str(args.eval_frames), "--synthetic-frames", "0", "--threads", str(args.threads)]
        command += ["--json", str(report)] + (["--sensitivity"] if index == 0 and not args.no_sensitivity else [])
        command += [item for prefix in args.keep for item in ("--keep", prefix)]
        code = easyocc(*command)
        if code not in (0, 1):  # 1: agreement below --min-agreement, the report is still written
            raise SystemExit(f"easyocc export int8 failed with exit code {code}")
        exports[start] = (path, json.loads(report.read_text()))

    from easyocc.export.feeds import dataset_feeds
    from easyocc.export.fp16_check import fp16_emulation_runner
    from easyocc.training.model import load_checkpoint

    model, _ = load_checkpoint(args.checkpoint)

    def runners():
        fp32 = create_runner(args.model, "onnxruntime", threads=args.threads, providers=["CPUExecutionProvider"])
        int8 = [
            create_runner(path, "onnxruntime", threads=args.threads, providers=["CPUExecutionProvider"])
            for path, _ in exports.values()
        ]
        return fp32, fp16_emulation_runner(model, manifest), int8

    labels = ["FP32 (ONNX Runtime)", "FP16 (emulated)"] + [
        f"INT8 Q/DQ, calibration from key frame {s}" for s in exports
    ]
    fp32, fp16, int8 = runners()
    real = [("dataset", f) for f in dataset_feeds(manifest, args.data, count=args.eval_frames, stride=2, start=1)]
    (fp16_real,) = compare_runners([fp32, fp16], real, 0.99, labels=labels[:2])
    synth = [("synthetic-heldout", f) for f in dataset_feeds(manifest, heldout)]
    synth_reports = compare_runners([fp32, fp16, *int8], synth, 0.99, labels=labels)

    from easyocc.runtime.dataset.nuscenes import NuScenesDataset

    scene = NuScenesDataset(heldout).scene_names[0]
    scores = {}
    for index, (label, runner) in enumerate(zip(labels, [fp32, fp16, *int8])):
        safe = label.split(" ")[0].lower() + ("" if "INT8" not in label else label.rsplit(" ", 1)[-1])
        rays = index <= 2  # RayIoU costs ~7 s a frame here: FP32, FP16 and the first INT8 window only
        scores[label] = headline(score_runner(runner, heldout, scene, out / "predictions" / safe, rays=rays))

    int8_real = [data["agreement"] for _, data in exports.values()]
    fp32, _, int8 = runners()
    flips = flips_by_confidence(fp32, int8[0], real)
    result = {
        "model": args.model,
        "model_version": manifest.model_version,
        "training_data": manifest.training_data,
        "quantizer": next(iter(exports.values()))[1]["int8"]["quantization"]["tool"],
        "calibration": {
            "frames": args.frames,
            "stride": 2,
            "starts": list(exports),
            "data": args.data,
            "method": "minmax",
        },
        "heldout_synthetic": {"dataset": str(heldout), "synth": " ".join(HELDOUT_SYNTH), "frames": len(synth)},
        "sizes_bytes": {
            "fp32_onnx": Path(args.model).stat().st_size,
            "fp16_weights_estimate": fp16_weight_bytes(args.model),
            "int8_qdq_onnx": [path.stat().st_size for path, _ in exports.values()],
        },
        "agreement_with_fp32": {
            "real_scene0916_heldout": {
                "fp16": {"agreement": fp16_real.agreement, "worst_frame": fp16_real.worst_frame_agreement},
                "int8": spread(r["agreement"] for r in int8_real),
                "int8_worst_frame": spread(r["worst_frame_agreement"] for r in int8_real),
                "int8_max_confidence_diff": spread(r["max_confidence_diff"] for r in int8_real),
                "int8_mean_confidence_diff": spread(r["mean_confidence_diff"] for r in int8_real),
                "frames_per_window": args.eval_frames,
            },
            "synthetic_heldout": {
                "fp16": {
                    "agreement": synth_reports[0].agreement,
                    "max_confidence_diff": synth_reports[0].max_confidence_diff,
                },
                "int8": spread(r.agreement for r in synth_reports[1:]),
                "int8_max_confidence_diff": spread(r.max_confidence_diff for r in synth_reports[1:]),
                "int8_mean_confidence_diff": spread(r.mean_confidence_diff for r in synth_reports[1:]),
            },
        },
        "scores_synthetic_heldout_percent": {
            "fp32": scores[labels[0]],
            "fp16": scores[labels[1]],
            "int8_per_window": [scores[label] for label in labels[2:]],
            "int8": {
                key: spread(scores[label][key] for label in labels[2:]) for key in ("miou", "miou_star", "geometry_iou")
            },
            "rayiou_scored_for": labels[:3],
        },
        "int8_flips_by_fp32_confidence_real_heldout": flips,
        "sensitivity": next(iter(exports.values()))[1]["sensitivity"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json_path:
        write_json_atomic(args.json_path, result)
    print(json.dumps({k: v for k, v in result.items() if k != "sensitivity"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
