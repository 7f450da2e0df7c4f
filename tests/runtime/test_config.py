"""The one config loader (easyocc.runtime.contract.config): types by annotation, bounds, unknown keys,
NaN, YAML files, field docstrings; without torch."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from easyocc.runtime.contract import config
from easyocc.runtime.contract.config import setting
from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.grid import OCC3D_NUSCENES, GridSpec


@dataclass(frozen=True)
class Inner:
    rate: float = setting(1.0, above=0.0)
    """Playback rate."""
    names: tuple[str, ...] = ()
    """Names, in order."""


@dataclass(frozen=True)
class Outer:
    count: int = setting(3, min=1, max=10)
    """How many."""
    mode: str = setting("fast", choices=("fast", "slow"))
    """fast or slow."""
    path: Path | None = None
    """An optional file."""
    band: tuple[float, float] = (0.0, 1.0)
    """A [lo, hi] pair."""
    inner: Inner = field(default_factory=Inner)
    """A section."""
    grid: GridSpec = OCC3D_NUSCENES
    """A value type with from_dict/to_dict."""


def test_overrides_are_parsed_for_their_field_type():
    loaded = config.load(
        Outer, overrides=["count=4", "path=007", "band=[1, 2]", "inner.names=[a, b]", "inner.rate=1e-3"]
    )
    assert loaded.count == 4 and loaded.path == Path("007") and loaded.band == (1.0, 2.0)
    assert loaded.inner == Inner(rate=0.001, names=("a", "b"))
    assert config.load(Outer, overrides=["path=null"]).path is None
    assert config.build(Outer, config.to_dict(loaded)) == loaded  # round trip through plain types
    grid = {"lower": [0, 0, 0], "upper": [8, 8, 4], "voxel_size": 0.5}
    assert config.load(Outer, values={"grid": grid}).grid == GridSpec.from_dict(grid)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("count=0", "config count: 0 is below the minimum 1"),
        ("count=11", "config count: 11 is above the maximum 10"),
        ("count=2.5", "config count: expected int, got 2.5"),
        ("count=true", "config count: expected int, got True"),
        ("mode=medium", "config mode: 'medium' is not one of fast, slow"),
        ("inner.rate=0", "config inner.rate: 0.0 must be greater than 0.0"),
        ("inner.rate=.nan", "config inner.rate: nan is not a finite number"),
        ("inner.rate=-.inf", "config inner.rate: -inf is not a finite number"),
        ("band=[1]", "config band: expected a list of 2, got [1]"),
        ("inner.rats=2", "unknown config key 'inner.rats'; known under inner: rate, names"),
        ("cuont=2", "unknown config key 'cuont'; known: count, mode, path, band, inner, grid"),
        ("count.x=2", "config override count.x: 'count' is not a section"),
        ("count", "config override 'count' must look like key=value"),
    ],
)
def test_bad_values_are_refused_with_one_line(override, message):
    with pytest.raises(EasyOccError) as error:
        config.load(Outer, overrides=[override])
    assert str(error.value) == message or str(error.value).startswith(message)


def test_yaml_files(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("count: 5\ninner: {rate: 2.0}\n")
    assert config.load(Outer, path, ["count=6"]) == Outer(count=6, inner=Inner(rate=2.0))
    path.write_text("count: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(EasyOccError, match=rf"^config file {path}: invalid YAML at line 1 \(could not determine"):
        config.load(Outer, path)
    with pytest.raises(EasyOccError, match="config file not found"):
        config.load(Outer, tmp_path / "missing.yaml")


def test_docs_describe_and_yaml_dump():
    assert config.field_docs(Outer)["count"] == "How many."
    lines = config.describe(Outer)
    assert "count (int, default 3, min 1, max 10): How many." in lines
    assert "inner.rate (float, default 1.0, above 0.0): Playback rate." in lines
    dumped = yaml.safe_load(config.to_yaml(Outer()))
    assert dumped["inner"] == {"rate": 1.0, "names": []} and dumped["grid"]["voxel_size"] == 0.4


def test_check_validates_a_constructed_config():
    config.check(Outer())
    with pytest.raises(EasyOccError, match="config count: 0 is below the minimum 1"):
        config.check(Outer(count=0))


def test_every_config_has_a_docstring_per_field():
    from easyocc.ros_node.params import NodeParameters
    from easyocc.training.config import TrainConfig
    from easyocc.training.pseudo.run import LabelsConfig
    from easyocc.training.synth.config import SynthConfig

    def sections(cls):
        yield cls
        for f in config.dataclasses.fields(cls):
            hint = config.field_types(cls)[f.name]
            if config.is_section(hint):
                yield from sections(hint)

    for root in (TrainConfig, LabelsConfig, SynthConfig, NodeParameters):
        for cls in sections(root):
            missing = [f.name for f in config.dataclasses.fields(cls) if not config.field_docs(cls).get(f.name)]
            assert not missing, f"{cls.__name__}: fields without a docstring: {missing}"


def test_imports_without_torch():
    code = "import sys, easyocc.runtime.contract.config; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
