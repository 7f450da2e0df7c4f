"""What a frame costs after the machine sat idle: preprocessing and inference timed after idle gaps.

Usage: python benchmarks/bench_idle_wake.py --data ../shared/data/nuscenes-scene-0916
       --json docs/results/idle_wake.json

Live at a camera's rate the runtime idles between frames (at 2 Hz about 360 ms of every 500); a
benchmark that runs frames back to back never does. This times the same real frame's preprocessing
(the runtime's lanes, one per core, and a single lane for comparison) and the backend's inference
after gaps of 0 to 1 s, the gaps interleaved block by block, so that a gap's cost shows apart from
the machine's drift. Median and p90 ms per gap, in one JSON.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

GAPS_S = (0.0, 0.01, 0.1, 0.36, 1.0)


def _after_gaps(work, gaps, blocks: int, per_block: int) -> dict:
    """{gap: [ms of `work()` right after sleeping `gap` s]}, the gaps interleaved block by block."""
    samples = {gap: [] for gap in gaps}
    for _ in range(blocks):
        for gap in gaps:
            for _ in range(per_block):
                time.sleep(gap)
                start = time.perf_counter()
                work()
                samples[gap].append(1e3 * (time.perf_counter() - start))
    return samples


def _summary(samples: dict) -> dict:
    return {
        f"{gap:g}": {
            "count": len(values),
            "p50": statistics.median(values),
            "p90": statistics.quantiles(values, n=10)[-1],
        }
        for gap, values in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="nuScenes-layout dataset folder (one frame is used)")
    parser.add_argument("--model", default="", help="ONNX model ('' = the bundled model)")
    parser.add_argument(
        "--gaps", default=",".join(f"{gap:g}" for gap in GAPS_S), help="idle gaps in seconds, comma-separated"
    )
    parser.add_argument("--blocks", type=int, default=3, help="rounds over all the gaps")
    parser.add_argument("--per-block", type=int, default=8, help="timings per gap in each round")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    if args.blocks < 1 or args.per_block < 2:
        parser.error("--blocks must be >= 1 and --per-block >= 2")
    try:
        args.gaps = tuple(float(gap) for gap in args.gaps.split(","))
    except ValueError:
        parser.error(f"--gaps must be seconds separated by commas, got '{args.gaps}'")
    if any(gap < 0 for gap in args.gaps):
        parser.error(f"--gaps must not be negative, got '{','.join(f'{gap:g}' for gap in args.gaps)}'")

    from easyocc.runtime.contract.errors import EasyOccError

    try:
        report = measure(args)
    except EasyOccError as exc:
        parser.exit(2, f"bench_idle_wake: error: {exc}\n")
    for name, by_gap in report["ms_after_gap"].items():
        cells = ", ".join(f"{gap} s: {value['p50']:.1f}" for gap, value in by_gap.items())
        print(f"{name:24s} p50 ms after a gap of {cells}")
    if args.json:
        from easyocc.runtime.contract.fileio import write_json_atomic

        write_json_atomic(args.json, report)
        print(f"wrote {args.json}")


def measure(args) -> dict:
    """The JSON-ready report: ms after each gap for the lanes, one lane and the backend."""
    import numpy as np
    from easyocc.runtime.contract.errors import EasyOccError
    from easyocc.runtime.contract.manifest import INPUT_IMAGES
    from easyocc.runtime.contract.preprocess import CameraPreprocessor
    from easyocc.runtime.streaming import RuntimeConfig, SourceConfig, open_runtime, open_source

    source, rig = open_source(SourceConfig(data=args.data))
    frame = next(iter(source))
    absent = [name for name in rig.names if name not in frame.images]
    if absent:
        raise EasyOccError(f"{args.data}: the first frame has no image from {', '.join(absent)}")
    present = {i: frame.images[name] for i, name in enumerate(rig.names)}
    with open_runtime(RuntimeConfig(model=args.model), rig) as runtime:
        lanes = runtime.preprocessor
        width, height = lanes.input_size
        images = np.zeros((len(rig), height, width, 3), np.uint8)  # the lanes write the frame into it
        one_lane = CameraPreprocessor(rig, lanes.input_size, workers=1)
        try:
            runtime.bind_tables(())
            work = {
                f"preprocess, {lanes.lanes} lanes": lambda: lanes.run(present, (), images),
                "preprocess, 1 lane": lambda: one_lane.run(present, (), images),
                "inference": lambda: runtime.runner.infer({INPUT_IMAGES: images}),
            }
            for run in work.values():  # warm: first-touch pages, arenas
                run()
                run()
            load_before = os.getloadavg()
            results = {
                name: _summary(_after_gaps(run, args.gaps, args.blocks, args.per_block)) for name, run in work.items()
            }
        finally:
            one_lane.close()
        return {
            "data": args.data,
            "model": runtime.manifest.summary(),
            "backend": runtime.backend_name,
            "input_size": list(lanes.input_size),
            "gaps_s": list(args.gaps),
            "load_average": {"before": list(load_before), "after": list(os.getloadavg()), "cpu_count": os.cpu_count()},
            "ms_after_gap": results,
        }


if __name__ == "__main__":
    main()
