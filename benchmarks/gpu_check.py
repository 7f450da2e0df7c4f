"""The prepared GPU check: one call on a CUDA machine, one JSON.

1. The compact model (training.model.variant('compact'), 6 x 256 x 704, fresh weights: timing does
   not depend on them) and the bundled demo model (6 x 128 x 352), behind the deploy wrapper (argmax
   included), in torch: FP32 (TF32 off), FP16 autocast, BF16 autocast, and each replayed as a CUDA
   graph; p50/p90/p99 over `--iters` iterations timed with CUDA events.
2. Decoding six real 1600 x 900 JPEGs: nvImageCodec on the GPU (one batch; with and without the copy
   back to the host) against OpenCV on the CPU (full size and 1/2 in the IDCT, one thread and six).

Preparation here, then one `run` on the device machine (../shared does not travel; the wheel matches
the machine's CUDA: nvidia-nvimgcodec-cu13 for torch +cu13x, -cu12 for +cu12x):

    echo /.device/ >> .git/info/exclude; mkdir -p .device/jpegs .device/wheels
    for c in ../shared/data/nuscenes-scene-0916/samples/CAM_*; do cp "$(ls $c/*.jpg | head -1)" .device/jpegs/; done
    .venv/bin/pip download -q --no-deps --only-binary=:all: --python-version 3.12 \\
        --platform manylinux2014_x86_64 -d .device/wheels nvidia-nvimgcodec-cu13 "nvidia-nvjpeg>=13,<14"
    run(carry=[".device"], timeout_s=540, command="python3 -m pip install -q --no-deps --no-build-isolation -e . \\
        && python3 -m pip install -q --no-deps .device/wheels/*.whl; \\
        PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --jpegs .device/jpegs --json $OUT/gpu_check.json")

nvJPEG comes as its own wheel (nvidia-nvjpeg for CUDA 13, nvidia-nvjpeg-cu12 for 12); without it
nvImageCodec falls back to its CPU decoder, which the JSON would then show as slow. Not run yet: no
session has had the GPU machine since this script was written (docs/readme/runtime.md).

On a machine without CUDA it stops at once with a clear message; `--cpu-smoke` runs every section
that can run on the CPU with a few iterations, to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from easyocc.runtime.benchmark import percentiles


class CheckError(Exception):
    """A refused invocation (exit 2 with its one-line message)."""


def timed(fn, iters: int, warmup: int, cuda: bool) -> dict:
    """ms per call of fn(): CUDA events around each call on a GPU, perf_counter on the CPU."""
    import torch

    for _ in range(warmup):
        fn()
    samples = []
    if cuda:
        torch.cuda.synchronize()
        for _ in range(iters):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            samples.append(start.elapsed_time(stop))
    else:
        for _ in range(iters):
            start = time.perf_counter()
            fn()
            samples.append(1e3 * (time.perf_counter() - start))
    return percentiles(samples)


def model_inputs(config, device):
    """(images u8 [N, H, W, 3], vt_uv, vt_weights) on `device`: random images, the nuScenes rig's real tables."""
    import torch
    from easyocc.calibration import default_rig
    from easyocc.runtime.contract.view_feed import view_transform_feed
    from easyocc.training.model import manifest_for

    manifest = manifest_for(config)
    feed = view_transform_feed(manifest, default_rig())
    width, height = config.input_size
    images = torch.randint(0, 256, (len(config.camera_names), height, width, 3), dtype=torch.uint8)
    tensors = (images, torch.from_numpy(feed["vt_uv"]), torch.from_numpy(feed["vt_weights"]))
    return tuple(t.to(device) for t in tensors)


def time_model(name: str, model, config, device, iters: int, warmup: int, cuda: bool) -> dict:
    """{mode: percentiles} for one model: fp32, fp16/bf16 autocast, and CUDA graphs of each on a GPU."""
    import torch
    from easyocc.export.wrapper import DeployWrapper

    wrapper = DeployWrapper(model, 18).eval().to(device)
    inputs = model_inputs(config, device)
    modes = {"fp32": None, "fp16_autocast": torch.float16, "bf16_autocast": torch.bfloat16}
    out = {"input": f"{len(config.camera_names)}x{config.input_size[1]}x{config.input_size[0]}", "modes": {}}
    for mode, dtype in modes.items():
        if dtype is torch.float16 and not cuda:
            out["modes"][mode] = {"skipped": "float16 autocast needs CUDA"}
            continue

        def step(dtype=dtype):
            with (
                torch.inference_mode(),
                torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
            ):
                return wrapper(*inputs)

        try:
            out["modes"][mode] = timed(step, iters, warmup, cuda)
            if cuda:
                out["modes"][mode + "_cuda_graph"] = time_cuda_graph(step, iters, warmup)
        except Exception as exc:  # record and go on: one failing mode must not cost the other numbers
            out["modes"][mode] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    print(
        f"{name}: " + ", ".join(f"{m} p50 {r['p50']:.2f} ms" for m, r in out["modes"].items() if "p50" in r), flush=True
    )
    return out


def time_cuda_graph(step, iters: int, warmup: int) -> dict:
    """Capture one call of step() (static inputs) as a CUDA graph and time its replay."""
    import torch

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):  # warm-up on a side stream, as torch.cuda.graphs requires
            step()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return timed(graph.replay, iters, warmup, cuda=True)


def read_jpegs(folder) -> list[bytes]:
    paths = sorted(Path(folder).glob("*.jpg"))
    if len(paths) < 6:
        raise CheckError(f"--jpegs {folder}: expected six camera JPEGs, found {len(paths)}")
    return [p.read_bytes() for p in paths[:6]]


def time_decoding(jpegs: list[bytes], iters: int, warmup: int, cuda: bool) -> dict:
    """OpenCV (CPU) and nvImageCodec (GPU) decoding of the six JPEGs; ms per frame of six."""
    import cv2

    out = {"images": len(jpegs), "bytes_mean": float(np.mean([len(j) for j in jpegs]))}
    buffers = [np.frombuffer(j, np.uint8) for j in jpegs]
    flags = {"full": cv2.IMREAD_COLOR, "reduced_2": cv2.IMREAD_REDUCED_COLOR_2}
    with ThreadPoolExecutor(6) as pool:
        for label, flag in flags.items():
            out[f"opencv_{label}_1_thread"] = timed(
                lambda f=flag: [cv2.imdecode(b, f) for b in buffers], iters, warmup, False
            )
            out[f"opencv_{label}_6_threads"] = timed(
                lambda f=flag: list(pool.map(lambda b: cv2.imdecode(b, f), buffers)), iters, warmup, False
            )
    try:
        from nvidia import nvimgcodec
    except ImportError as exc:
        out["nvimgcodec"] = {"skipped": f"nvImageCodec not installed: {exc}"}
        return out
    if not cuda:
        out["nvimgcodec"] = {"skipped": "no CUDA device"}
        return out
    import torch

    decoder = nvimgcodec.Decoder()
    params = nvimgcodec.DecodeParams(color_spec=nvimgcodec.ColorSpec.RGB)

    def on_device():
        images = decoder.decode(jpegs, params=params)
        torch.cuda.synchronize()
        return images

    def to_host():
        return [np.asarray(image.cpu()) for image in decoder.decode(jpegs, params=params)]

    first = to_host()
    reference = [cv2.cvtColor(cv2.imdecode(b, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for b in buffers]
    out["nvimgcodec"] = {
        "version": getattr(nvimgcodec, "__version__", "unknown"),
        "batch_on_device": timed(on_device, iters, warmup, False),
        "batch_to_host": timed(to_host, iters, warmup, False),
        "mean_abs_diff_to_opencv": float(
            np.mean([np.abs(a.astype(float) - b).mean() for a, b in zip(first, reference)])
        ),
        "shapes": [list(a.shape) for a in first],
    }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="write the results here")
    parser.add_argument("--jpegs", default=None, help="folder with six real 1600x900 camera JPEGs")
    parser.add_argument("--iters", type=int, default=300, help="timed iterations per model mode (300)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--cpu-smoke", action="store_true", help="no GPU: run what the CPU can, 2 iterations")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("gpu_check: error: torch is not installed", file=sys.stderr)
        return 2
    cuda = torch.cuda.is_available()
    if not cuda and not args.cpu_smoke:
        print(
            f"gpu_check: error: no CUDA device (torch {torch.__version__}, CUDA build {torch.version.cuda}); "
            "run it on the GPU machine, or with --cpu-smoke to check the script here",
            file=sys.stderr,
        )
        return 2
    iters, warmup = (2, 1) if args.cpu_smoke else (args.iters, args.warmup)
    device = torch.device("cuda" if cuda else "cpu")
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    report = {
        "script": "benchmarks/gpu_check.py",
        "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "iters": iters,
        "warmup": warmup,
        "settings": "TF32 off, cudnn.benchmark on, batch 1 (one frame of six cameras), deploy wrapper with argmax",
        "models": {},
        "errors": [],
    }
    try:
        from easyocc.models import bundled_model
        from easyocc.training.model import build_model, load_checkpoint
        from easyocc.training.model.config import variant

        compact = variant("compact")
        report["models"]["compact"] = time_model(
            "compact", build_model(compact).eval(), compact, device, iters, warmup, cuda
        )
        model, config = load_checkpoint(bundled_model(".pt"))
        report["models"]["bundled"] = time_model("bundled", model, config, device, iters, warmup, cuda)
    except Exception as exc:
        report["errors"].append(f"models: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    try:
        if args.jpegs:
            report["decode"] = time_decoding(read_jpegs(args.jpegs), max(iters // 3, 2), min(warmup, 5), cuda)
        else:
            report["decode"] = {"skipped": "no --jpegs folder given"}
    except CheckError as exc:
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        report["errors"].append(f"decode: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}" + (f" with {len(report['errors'])} errors" if report["errors"] else ""))
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
