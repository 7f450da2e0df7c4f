"""`easyocc stream`, `easyocc bench` and `easyocc demo` through the real console entry."""

from __future__ import annotations

import json

import numpy as np
import pytest
from easyocc.calibration import save_rig

from easyocc.cli import main as easyocc
from tests.runtime.stream_fixtures import (
    build_tiny_model,
    encode_jpeg,
    rig,  # noqa: F401  (pytest fixture)
    tiny_model,  # noqa: F401  (pytest fixture)
)


@pytest.fixture
def image_folder(tmp_path, rig):  # noqa: F811
    rng = np.random.default_rng(0)
    for camera in rig:
        (tmp_path / "images" / camera.name).mkdir(parents=True)
        for i in range(3):
            image = rng.integers(0, 255, (camera.height, camera.width, 3), dtype=np.uint8)
            (tmp_path / "images" / camera.name / f"{1_000_000 + 100_000 * i}.jpg").write_bytes(encode_jpeg(image))
    save_rig(rig, tmp_path / "rig.yaml")
    return tmp_path


def test_stream_image_folder_writes_npz_preview_and_json(image_folder, tiny_model, capsys):  # noqa: F811
    out = image_folder / "out"
    code = easyocc(
        [
            "stream",
            "--model",
            str(tiny_model),
            "--images",
            str(image_folder / "images"),
            "--rig",
            str(image_folder / "rig.yaml"),
            "--out",
            str(out),
            "--json",
            str(out / "s.json"),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "frames: 3 in, 3 out" in printed and "p99" in printed
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["000000.npz", "000001.npz", "000002.npz"]
    assert np.load(out / "frames" / "000001.npz")["semantics"].shape == (20, 20, 4)
    assert (out / "preview.png").is_file() and (out / "preview.gif").is_file()
    summary = json.loads((out / "s.json").read_text())
    assert summary["frames_out"] == 3 and summary["latency_ms"]["infer"]["count"] == 3


def test_stream_missing_model_is_a_clear_error(tmp_path, capsys):
    code = easyocc(["stream", "--model", str(tmp_path / "none.onnx"), "--images", str(tmp_path)])
    assert code == 2
    assert f"easyocc stream: error: model not found: {tmp_path / 'none.onnx'}" in capsys.readouterr().err


def test_bench_two_backends_side_by_side(image_folder, tmp_path, capsys):
    model = build_tiny_model(tmp_path / "work.onnx", work=4)
    report = tmp_path / "bench.json"
    code = easyocc(
        [
            "bench",
            "--model",
            str(model),
            "--rig",
            str(image_folder / "rig.yaml"),
            "--frames",
            "12",
            "--warmup",
            "2",
            "--sequential-frames",
            "3",
            "--backend",
            "onnxruntime:threads=1",
            "--backend",
            "onnxruntime:threads=2",
            "--json",
            str(report),
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "onnxruntime:threads=1" in table and "pipelined / backend alone %" in table
    plot = report.with_suffix(".png")
    assert f"wrote {plot}" in table  # the latency plot beside the JSON
    import cv2

    assert cv2.imread(str(plot)).shape == (450, 1300, 3)  # 13 x 4.5 inches at 100 dpi
    data = json.loads(report.read_text())
    assert [r["backend"] for r in data["results"]] == ["onnxruntime:threads=1", "onnxruntime:threads=2"]
    for result in data["results"]:
        assert result["pipelined"]["frames"] == 12 and result["drops"] == {}
        alone = result["backend_alone"]  # timed before the one-at-a-time run and after the throughput run
        assert (alone["first"]["count"], alone["after_throughput"]["count"], alone["count"]) == (12, 12, 24)
        rates = sorted([alone["first"]["fps"], alone["after_throughput"]["fps"]])
        assert rates[0] <= alone["fps"] <= rates[1]  # the pooled rate lies between the two
        expected = result["pipelined_over_backend_first"] * alone["first"]["fps"] / alone["fps"]
        assert abs(result["pipelined_over_backend"] - expected) < 1e-9
        stages = result["pipelined"]["stages_ms"]
        assert stages["infer"]["p50"] <= stages["infer"]["p99"] <= stages["infer"]["max"]
        assert 0 < result["pipelined_over_backend"] and result["host_over_backend"] > 0
        sequential = result["sequential"]["stages_ms"]
        assert sequential["preprocess"]["count"] == 3 and sequential["infer"]["count"] == 3
        per_frame = result["sequential"]["per_frame_ms"]  # the plot's timeline: every measured frame
        assert len(per_frame["end_to_end"]) == 3
        assert max(per_frame["infer"]) == pytest.approx(sequential["infer"]["max"], abs=1e-3)
        expected = (sequential["preprocess"]["p50"] + sequential["postprocess"]["p50"]) / sequential["infer"]["p50"]
        assert result["host_over_backend"] == pytest.approx(expected)
        assert result["peak_rss_mb"] > 50 and abs(result["rss_growth_percent"]) < 50


def test_bench_backend_spec_errors(capsys):
    assert easyocc(["bench", "--backend", "onnxruntime:threads"]) == 2
    assert "expected key=value, got 'threads'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--frames", "1", "config options.frames: 1 is below the minimum 2"),
        ("--sequential-frames", "0", "config options.sequential_frames: 0 is below the minimum 1"),
        ("--backend-frames", "0", "config options.backend_frames: 0 is below the minimum 1"),
        ("--warmup", "-1", "config options.warmup: -1 is below the minimum 0"),
    ],
)
def test_bench_frame_counts_are_checked_before_anything_runs(option, value, message, capsys):
    assert easyocc(["bench", "--model", "absent.onnx", option, value]) == 2
    assert capsys.readouterr().err.strip() == f"easyocc bench: error: {message}"


def test_demo_on_the_real_scene(nuscenes_root, tiny_model, tmp_path, capsys):  # noqa: F811
    out = tmp_path / "demo"
    code = easyocc(
        ["demo", "--model", str(tiny_model), "--data", str(nuscenes_root), "--frames", "3", "--out", str(out)]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "frames: 3 in, 3 out" in printed and "end_to_end" in printed
    assert (out / "preview.png").is_file() and (out / "preview.gif").is_file()


def test_demo_without_the_bundled_model_says_what_to_do(tmp_path, capsys):
    code = easyocc(["demo", "--model", str(tmp_path / "missing.onnx"), "--out", str(tmp_path)])
    assert code == 2
    assert "model not found" in capsys.readouterr().err


def test_bench_paced_reports_live_latency_apart_from_throughput(nuscenes_root, tmp_path, capsys):
    """--paced: a live run at the recording's pace (sped up here) with the newest-frame policy, then
    the throughput run, whose end-to-end time is labelled queueing; load average and the host table."""
    model = build_tiny_model(tmp_path / "work.onnx", work=2)
    report = tmp_path / "bench.json"
    code = easyocc(
        ["bench", "--model", str(model), "--data", str(nuscenes_root), "--paced", "--speed", "8"]
        + ["--frames", "6", "--warmup", "1", "--sequential-frames", "2", "--backend-frames", "2", "--json", str(report)]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "live latency p50 ms" in table and "pipelined queueing p50 ms" in table
    data = json.loads(report.read_text())
    assert data["paced"] is True and data["speed"] == 8.0
    assert len(data["load_average"]["before"]) == 3 and data["load_average"]["cpu_count"] >= 1
    host = data["host_preprocess_ms"]
    assert (
        list(host) == ["704x256", "96x64", "1600x900 raw copy (in-graph resize)"]
        and host["704x256"]["reduction"] == 2
        and host["96x64"]["reduction"] == 8
    )
    assert host["704x256"]["reduced"]["count"] == 10 and host["704x256"]["full"]["p50"] > 0
    assert host["1600x900 raw copy (in-graph resize)"]["copy"]["count"] == 10
    (result,) = data["results"]
    live = result["live"]
    # every frame offered after warm-up is either published or superseded (newest-frame policy)
    assert live["frames_in"] == 6 and live["frames"] + live["superseded"] >= 6 - 1
    assert live["latency_ms"]["count"] == live["frames"] > 0
    assert live["latency_over_sequential"] == pytest.approx(
        live["latency_ms"]["p50"] / result["sequential"]["stages_ms"]["end_to_end"]["p50"]
    )
    assert "end_to_end" not in result["pipelined"]["stages_ms"]
    assert result["pipelined"]["queueing_end_to_end_ms"]["count"] == result["pipelined"]["frames"] == 6


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["stream", "--data", "D", "--scene", "a", "--scene", "b", "--frames", "3", "--no-npz", "runtime.threads=2"],
            {"source.data": "D", "source.scenes": ["a", "b"], "frames": 3, "npz": False, "runtime.threads": 2},
        ),
        (
            ["bench", "--backend", "onnxruntime:threads=1", "--frames", "20", "--paced", "options.warmup=2"],
            {"backends": ["onnxruntime:threads=1"], "options.frames": 20, "options.live": True, "options.warmup": 2},
        ),
        (["demo", "--frames", "3", "--out", "O"], {"frames": 3, "out": "O", "data": ""}),
    ],
)
def test_print_config_shows_the_effective_config(argv, expected, capsys):
    import yaml
    from easyocc.runtime.streaming import default_model

    assert easyocc([*argv, "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    for key, value in expected.items():
        node = printed
        for part in key.split("."):
            node = node[part]
        assert node == value, key
    model = printed["runtime"]["model"] if argv[0] == "stream" else printed["model"]
    assert model == str(default_model())


def test_bad_config_values_are_one_line_errors(capsys):
    assert easyocc(["stream", "--data", "D", "runtime.missing_camera=skip"]) == 2
    assert (
        capsys.readouterr().err
        == "easyocc stream: error: config runtime.missing_camera: 'skip' is not one of drop, zero\n"
    )
    assert easyocc(["bench", "--backend", "onnxruntime:threads=0"]) == 2
    err = capsys.readouterr().err
    assert (
        err == "easyocc bench: error: backend spec 'onnxruntime:threads=0': config threads: 0 is below the minimum 1\n"
    )
    assert easyocc(["stream", "--data", "D", "runtime.ahead_priority=high"]) == 2
    assert (
        capsys.readouterr().err
        == "easyocc stream: error: config runtime.ahead_priority: 'high' is not one of auto, low, normal\n"
    )
    assert easyocc(["bench", "--backend", "tflite"]) == 2
    assert "config name: 'tflite' is not one of onnxruntime, tensorrt, torch" in capsys.readouterr().err


def test_bench_runtime_options_in_a_backend_spec(image_folder, tmp_path, capsys):
    """decoder= and reduced_decode= configure the runtime; an unusable decoder is refused in one line."""
    from easyocc.runtime.decode_gpu import gpu_decoder_unavailable

    model = build_tiny_model(tmp_path / "work.onnx")
    common = ["bench", "--model", str(model), "--rig", str(image_folder / "rig.yaml")]
    common += ["--frames", "3", "--warmup", "0", "--sequential-frames", "1", "--backend-frames", "1"]
    assert easyocc([*common, "--backend", "onnxruntime:reduced_decode=false"]) == 0
    assert easyocc([*common, "--backend", "onnxruntime:ahead_priority=normal", "--json", str(tmp_path / "b.json")]) == 0
    pipelined = json.loads((tmp_path / "b.json").read_text())["results"][0]["pipelined"]
    assert pipelined["ahead_low_priority"] is False and pipelined["prepared_ahead"] >= 0
    capsys.readouterr()
    assert easyocc([*common, "--backend", "onnxruntime:ahead_priority=high"]) == 2
    assert (
        capsys.readouterr().err == "easyocc bench: error: ahead_priority must be one of auto, low, normal, got 'high'\n"
    )
    why_not = gpu_decoder_unavailable()
    if why_not is None:
        pytest.skip("nvImageCodec runs here")
    capsys.readouterr()
    assert easyocc([*common, "--backend", "onnxruntime:decoder=nvimgcodec"]) == 2
    assert capsys.readouterr().err.strip() == f"easyocc bench: error: {why_not}"
