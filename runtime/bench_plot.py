"""The latency plot `easyocc bench` writes next to its JSON: per-stage percentiles and the per-frame
timeline of each backend. matplotlib is optional (the `plot` extra) and imported here only."""

from __future__ import annotations

from pathlib import Path

from easyocc.runtime.contract.errors import EasyOccError
from easyocc.runtime.contract.fileio import atomic_path

PERCENTILES = ("p50", "p90", "p99")
TIMELINE_STAGES = ("end_to_end", "infer")


def write_latency_plot(report: dict, path) -> Path:
    """PNG at `path`: left, one-frame-at-a-time p50/p90/p99 per stage and backend (bars); right, each
    measured frame's end-to-end and inference time in order (the per-frame timeline)."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError:
        raise EasyOccError("the latency plot needs matplotlib: pip install 'easyocc[plot]'") from None
    results = report.get("results") or []
    if not results:
        raise EasyOccError("latency plot: the report has no backend results")
    figure, (bars, timeline) = plt.subplots(1, 2, figsize=(13, 4.5), gridspec_kw={"width_ratios": [1.2, 1]})
    stages = list(results[0]["sequential"]["stages_ms"])
    width = 0.8 / (len(results) * len(PERCENTILES))
    for b, result in enumerate(results):
        stats = result["sequential"]["stages_ms"]
        for p, key in enumerate(PERCENTILES):
            offset = (b * len(PERCENTILES) + p) * width - 0.4 + width / 2
            values = [stats[stage].get(key, 0.0) for stage in stages]
            bars.bar([i + offset for i in range(len(stages))], values, width, label=f"{result['backend']} {key}")
    bars.set_xticks(range(len(stages)), stages, rotation=20)
    bars.set_ylabel("ms (one frame at a time)")
    bars.set_title("per-stage latency percentiles")
    bars.legend(fontsize=7)
    for result in results:
        per_frame = result["sequential"].get("per_frame_ms", {})
        for stage in TIMELINE_STAGES:
            if stage in per_frame:
                timeline.plot(per_frame[stage], label=f"{result['backend']} {stage}", linewidth=1)
    timeline.set_xlabel("measured frame")
    timeline.set_ylabel("ms")
    timeline.set_title("per-frame timeline")
    timeline.legend(fontsize=7)
    figure.suptitle(f"easyocc bench: {report.get('source', '')}, load average {report.get('load_average', '')}")
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return path
