"""Build + serialise time of each ROS output for the bundled model's output on real nuScenes frames.

Usage: python benchmarks/bench_ros_outputs.py --data /work/shared/data/nuscenes-scene-0916 --frames 3
       --json docs/results/ros_outputs.json
Per output (PointCloud2 with rgb, dense grid mono8, colour grid rgb8, BEV OccupancyGrid, MarkerArray as
bytes, and the MarkerArray as Python objects once for comparison): min and median ms over `--repeats`
runs per frame, and the voxel count. Needs rclpy (the [ros] extra or a sourced ROS 2).
"""

# ruff: noqa: B023  (each lambda runs inside the iteration that defines it)
from __future__ import annotations

import argparse
import statistics
import time


def _timed(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(1e3 * (time.perf_counter() - start))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    from easyocc.ros_node import conversions
    from easyocc.runtime.contract.fileio import write_json_atomic
    from easyocc.runtime.streaming import RuntimeConfig, SourceConfig, open_runtime, open_source
    from rclpy.serialization import serialize_message

    source, rig = open_source(SourceConfig(data=args.data))
    results = []
    with open_runtime(RuntimeConfig(threads=2), rig) as runtime:
        grid = runtime.grid
        for index, frame in enumerate(source):
            if index >= args.frames:
                break
            result = runtime.process(frame)
            voxels, header = result.voxels, conversions.make_header(result.stamp_us, "base_link")
            builds = {
                "points": lambda: serialize_message(
                    conversions.cloud_msg(voxels.xyz_ego, voxels.labels, voxels.confidence, header)
                ),
                "grid_mono8": lambda: serialize_message(
                    conversions.dense_grid_msg(result.semantics, grid, header, result.observed)
                ),
                "grid_colour_rgb8": lambda: serialize_message(
                    conversions.colour_grid_msg(result.semantics, grid, header, result.observed)
                ),
                "bev": lambda: serialize_message(conversions.bev_msg(result.bev, grid, header)),
                "markers_bytes": lambda: conversions.markers_bytes(voxels.xyz_ego, voxels.labels, grid, header),
            }
            for build in builds.values():
                build()  # type support loaded, first-touch pages: steady state is what a running node pays
            row = {"frame": index, "voxels": len(voxels)}
            for name, build in builds.items():
                times = _timed(build, args.repeats)
                row[name] = {"min_ms": round(min(times), 2), "median_ms": round(statistics.median(times), 2)}
            if index == 0:  # the old way, once: a Python Point per voxel, then rclpy's serialiser
                row["markers_python_objects"] = {
                    "once_ms": round(
                        _timed(
                            lambda: serialize_message(
                                conversions.markers_msg(voxels.xyz_ego, voxels.labels, grid, header)
                            ),
                            1,
                        )[0],
                        1,
                    )
                }
            results.append(row)
            print(row)
    summary = {
        "what": "build + serialise of each ROS output, bundled model, real nuScenes frames (scene-0916)",
        "machine": "x86-64 CPU, 2 cores shared with other jobs (timings are upper bounds)",
        "command": "python benchmarks/bench_ros_outputs.py --data DATA --frames 3 --json docs/results/ros_outputs.json",
        "frames": results,
    }
    if args.json:
        write_json_atomic(args.json, summary)


if __name__ == "__main__":
    main()
