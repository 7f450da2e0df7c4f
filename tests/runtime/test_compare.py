"""The comparator: the same feeds through several real runners, per-output agreement and differences."""

from __future__ import annotations

import numpy as np
import pytest
from easyocc.runtime.backends import create_runner
from easyocc.runtime.backends.compare import ParityReport, compare_runners, diff_outputs
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.manifest import INPUT_IMAGES, INPUT_VT_UV, OUTPUT_CONFIDENCE, OUTPUT_SEMANTICS
from easyocc.runtime.contract.view_feed import view_transform_feed

from tests.runtime.stream_fixtures import build_tiny_model, small_rig, tiny_manifest

pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The tiny contract model twice: plain, and with extra MatMuls whose result is multiplied by 0."""
    root = tmp_path_factory.mktemp("compare")
    return build_tiny_model(root / "plain.onnx"), build_tiny_model(root / "work.onnx", work=2)


def _feeds(count: int):
    manifest = tiny_manifest()
    tables = view_transform_feed(manifest, small_rig().resized(*manifest.input_size))
    width, height = manifest.input_size
    feeds = []
    for level in range(count):
        images = np.full((len(manifest.camera_names), height, width, 3), 60 + 60 * level, np.uint8)
        feeds.append(("grey", {INPUT_IMAGES: images, **tables}))
    return feeds


def test_three_runners_give_one_report_per_candidate(models):
    plain, work = models
    runners = [create_runner(plain, threads=1), create_runner(work, threads=1), create_runner(plain, threads=1)]
    reports = compare_runners(runners, _feeds(3), labels=["plain", "work", "plain again"])
    assert [(r.reference, r.candidate) for r in reports] == [("plain", "work"), ("plain", "plain again")]
    for report in reports:
        assert report.passed and report.agreement == 1.0 and len(report.frames) == 3
        data = report.to_dict()
        assert data["frames_by_source"] == {"grey": 3}
        assert data["outputs"][OUTPUT_SEMANTICS]["agreement"] == 1.0
        assert data["outputs"][OUTPUT_CONFIDENCE]["max_abs_diff"] < 1e-6
    assert not any(r.is_active for r in runners)  # activated by the comparator, deactivated again


def test_active_runners_stay_active_and_plain_feeds_are_accepted(models):
    plain, _ = models
    with create_runner(plain, threads=1) as first, create_runner(plain, threads=1) as second:
        (report,) = compare_runners([first, second], [feed for _, feed in _feeds(1)])
        assert first.is_active and second.is_active
    assert report.frames[0].source == "feed" and report.candidate.startswith("onnxruntime CPU")


def test_report_counts_class_agreement_and_confidence_differences():
    reference = {OUTPUT_SEMANTICS: np.zeros((10, 10), np.uint8), OUTPUT_CONFIDENCE: np.ones((10, 10), np.float32)}
    semantics = reference[OUTPUT_SEMANTICS].copy()
    semantics[0, :3] = 5  # 3 of 100 voxels change class
    confidence = reference[OUTPUT_CONFIDENCE].copy()
    confidence[1, 1] = 0.5
    report = ParityReport(min_agreement=0.99)
    frame = report.add("dataset", reference, {OUTPUT_SEMANTICS: semantics, OUTPUT_CONFIDENCE: confidence})
    assert frame.agreement == pytest.approx(0.97)
    assert frame.max_confidence_diff == pytest.approx(0.5) and frame.mean_confidence_diff == pytest.approx(0.005)
    assert not report.passed
    with pytest.raises(EasyOccError, match=r"parity failed: dataset frame 0 agrees on 97.0000 % of voxels"):
        report.raise_if_failed()
    report.add("dataset", reference, reference)
    assert report.agreement == pytest.approx(197 / 200) and report.worst_frame_agreement == pytest.approx(0.97)


def test_comparator_errors_name_the_problem(models):
    plain, _ = models
    with pytest.raises(EasyOccError, match="parity: a comparison needs at least two runners, got 1"):
        compare_runners([create_runner(plain)], _feeds(1))
    with pytest.raises(EasyOccError, match="parity: 1 labels for 2 runners"):
        compare_runners([create_runner(plain), create_runner(plain)], _feeds(1), labels=["one"])
    ref = {OUTPUT_SEMANTICS: np.zeros((2, 2), np.uint8)}
    with pytest.raises(EasyOccError, match="parity: the candidate did not return output 'semantics'"):
        diff_outputs(ref, {})
    with pytest.raises(EasyOccError, match=r"parity: output 'semantics' has shape \[4\], the reference \[2, 2\]"):
        diff_outputs(ref, {OUTPUT_SEMANTICS: np.zeros(4, np.uint8)})
    with pytest.raises(EasyOccError, match="parity: the reference has no class output 'semantics'"):
        ParityReport().add("x", {OUTPUT_CONFIDENCE: np.zeros(2)}, {OUTPUT_CONFIDENCE: np.zeros(2)})
    with pytest.raises(EasyOccError, match="parity: no frames were compared"):
        ParityReport().raise_if_failed()


def test_feed_check_refuses_non_finite_tables(models):
    plain, _ = models
    ((_, feed),) = _feeds(1)
    bad = {**feed, INPUT_VT_UV: feed[INPUT_VT_UV].copy()}
    bad[INPUT_VT_UV][0, 0, 0] = np.nan
    with create_runner(plain, threads=1) as runner:
        with pytest.raises(EasyOccError, match="onnxruntime: input 'vt_uv' contains NaN or inf"):
            runner.infer(bad)
        with pytest.raises(EasyOccError, match="onnxruntime: input 'vt_uv' contains NaN or inf"):
            runner.set_static({INPUT_VT_UV: bad[INPUT_VT_UV]})
