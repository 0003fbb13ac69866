"""Chapter parameters that the default run does not exercise, executed at a tiny scale.

The paper-scale sweeps switch parts of a chapter off to fit a CPU budget; each switch is
run here once so that a multi-hour sweep cannot fail on it after hours.
"""

import json
from pathlib import Path

from certlab.run import run_chapter

ROOT = Path(__file__).resolve().parents[1]


def test_chapter_12_without_the_joint_certificate(data_root):
    run = run_chapter(ROOT / "notebooks" / "12_smoothing_node_classification.py",
                      {"models": ["gcn"], "n0": 10, "n": 60, "max_epochs": 2, "max_ra": 1,
                       "max_rd": 2, "joint_certificate": False, "device": "cpu"})
    outputs = "".join(
        "".join(out.get("text", "")) for cell in json.loads(run.notebook)["cells"]
        if cell["cell_type"] == "code" for out in cell.get("outputs", []))
    assert "joint certificate skipped" in outputs
    assert "joint certificate:" not in outputs  # its claims are not made
    values = run.record["values"]
    assert set(values["avg_max_rd"]) == {"attributes GCN", "structure GCN"}
    assert values["model"] == "gcn" and "dense_avg_max_rd" in values
