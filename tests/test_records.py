"""certlab.records: saving a chapter's key numbers and reading committed paper-scale runs."""

import json

import pytest

from certlab.records import stored_runs


def _write_run(folder, name, values, prov=True):
    run = folder / name
    run.mkdir(parents=True)
    (run / "record.json").write_text(json.dumps(
        {"chapter": "x", "parameters": {"seed": 1}, "lib_hash": "h", "values": values}))
    if prov:
        (run / "provenance.json").write_text(json.dumps({"commit": "abc", "wall_time_s": 2.0}))
    return run


def test_stored_runs_reads_records_with_provenance_sorted(tmp_path):
    base = tmp_path / "results" / "paper" / "22_ch"
    _write_run(base, "b", {"acc": 0.5})
    _write_run(base, "a", {"acc": 0.25})
    _write_run(base, "c-interrupted", {"acc": 1.0}, prov=False)
    runs = stored_runs("22_ch", root=tmp_path)
    assert [r["run"] for r in runs] == ["a", "b"]
    assert runs[0]["values"] == {"acc": 0.25}
    assert runs[1]["provenance"]["commit"] == "abc"


def test_stored_runs_empty_and_bad_input(tmp_path):
    assert stored_runs("13_none", root=tmp_path) == []
    with pytest.raises(ValueError, match="notebook stem"):
        stored_runs("../etc", root=tmp_path)
    run = _write_run(tmp_path / "results" / "paper" / "ch", "r", {})
    (run / "record.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        stored_runs("ch", root=tmp_path)
