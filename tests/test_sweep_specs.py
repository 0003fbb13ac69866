"""The example sweep specs in sweeps/ stay valid: every grid point passes its chapter's schema."""

from pathlib import Path

import pytest

from certlab.sweep import load_spec, plan

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "sweeps").glob("*.yaml"))


def test_there_are_example_specs():
    assert SPECS, "no example sweep specs in sweeps/"


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_spec_loads_and_every_point_validates(spec, monkeypatch):
    monkeypatch.chdir(ROOT)
    points = plan(load_spec(spec))
    assert points and len({p.id for p in points}) == len(points)
