"""One CLI vocabulary (easyocc/commands/options.py): every command's --help shows the same words for
the same ideas and none of the old spellings; the old spellings still work as hidden aliases that say
so in one line; commands with a config print it with --print-config and list its fields in --help."""

from __future__ import annotations

import pytest

from easyocc.cli import main

OLD = ("--checkpoint", "--onnx ", "--max-frames", "--limit", "--stats-json", "--no-progress", "--set ")
HELP = [
    (["train"], True),
    (["labels"], True),
    (["synth"], True),
    (["stream"], True),
    (["bench"], True),
    (["demo"], True),
    (["eval"], False),
    (["report"], False),
    (["calib", "check"], False),
    (["export", "onnx"], False),
    (["export", "parity"], False),
    (["export", "lint"], False),
    (["export", "engine"], False),
    (["ros", "run"], False),
    (["ros", "play"], False),
]


@pytest.mark.parametrize(("argv", "has_config"), HELP, ids=[" ".join(a) for a, _ in HELP])
def test_help_speaks_the_vocabulary(argv, has_config, capsys):
    if argv[0] == "ros":
        pytest.importorskip("rclpy", reason="easyocc ros needs the ROS 2 wheels")
    if argv[0] in ("train", "labels", "eval", "report", "export"):
        pytest.importorskip("torch")
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert not [old for old in OLD if old in text], text
    if has_config:
        assert "--print-config" in text and "config fields (" in text
    if argv == ["ros", "run"]:
        assert "--print-config" in text and "sync_tolerance_ms: Largest spread of camera stamps" in text
    if argv[0] in ("stream", "bench", "demo", "eval", "report") or argv[:2] in (["export", "onnx"], ["ros", "run"]):
        assert "--model" in text


@pytest.mark.parametrize(
    ("argv", "notice"),
    [
        (["train", "--no-progress", "--print-config"], "easyocc: --no-progress is deprecated; use -q/--quiet\n"),
        (["labels", "--limit", "3", "--print-config"], "easyocc: --limit is deprecated; use --frames\n"),
        (["labels", "--set", "min_points=2", "--print-config"], "easyocc: --set is deprecated; use KEY=VALUE"),
    ],
)
def test_old_spellings_still_work_and_say_so(argv, notice, capsys):
    pytest.importorskip("torch")
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(notice) and captured.err.count("\n") == 1
    if "--limit" in argv:
        assert "\nframes: 3\n" in captured.out
    if "--set" in argv:
        assert "min_points: 2" in captured.out
