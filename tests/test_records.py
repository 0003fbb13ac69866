"""certlab.records: saving a chapter's key numbers and reading committed paper-scale runs."""

import json

import pytest

from certlab.records import (consecutive_slices, group_runs, merge_slice_runs, stored_runs,
                             stored_value_text)


def _write_run(folder, name, values, prov=True, parameters=None):
    run = folder / name
    run.mkdir(parents=True)
    (run / "record.json").write_text(json.dumps(
        {"chapter": "x", "parameters": {"seed": 1} if parameters is None else parameters,
         "lib_hash": "h", "values": values}))
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


def test_stored_value_text_formats_nested_values_and_several_runs(tmp_path):
    base = tmp_path / "results" / "paper" / "12_ch"
    _write_run(base, "gcn", {"rd": 5.4321, "by": {"structure GCN": 2.5}, "rank": ["A", "B"],
                             "same": True})
    assert stored_value_text("12_ch", "rd", ".2f", tmp_path) == "5.43"
    assert stored_value_text("12_ch", "by.structure GCN", ".1f", tmp_path) == "2.5"
    assert stored_value_text("12_ch", "rank", ">", tmp_path) == "A > B"
    assert stored_value_text("12_ch", "rank", root=tmp_path) == "A, B"
    assert stored_value_text("12_ch", "same", root=tmp_path) == "yes"
    assert stored_value_text("12_ch", "by", ".1f", tmp_path) == "structure GCN 2.5"
    _write_run(base, "gin", {"table": {"GIN": [50.0, 10.25], "MLP": [1.0, 0.0]}})
    assert stored_value_text("12_ch", "table", ".1f", tmp_path) == "GIN 50.0 / 10.2, MLP 1.0 / 0.0"
    assert stored_value_text("12_ch", "nope", root=tmp_path) == "not run yet"
    assert stored_value_text("12_ch", "by.nope", root=tmp_path, missing="-") == "-"
    _write_run(base, "gat", {"rd": 3.0})
    assert stored_value_text("12_ch", "rd", ".1f", tmp_path) == "gat: 3.0; gcn: 5.4"
    assert stored_value_text("99_none", "rd", root=tmp_path) == "not run yet"
    _write_run(base, "sage", {"rd": 5.4, "same": True})
    assert stored_value_text("12_ch", "rd", ".1f", tmp_path) == \
        "gat: 3.0; gcn: 5.4; sage: 5.4"
    assert stored_value_text("12_ch", "same", root=tmp_path) == "yes (both stored runs)"
    # a sweep's parameter digest is left out of the labels unless they would then clash
    _write_run(base, "n_parts-10_c8af3f38", {"p": 1.0})
    _write_run(base, "n_parts-50_0123abcd", {"p": 2.0})
    assert stored_value_text("12_ch", "p", ".1f", tmp_path) == "n_parts-10: 1.0; n_parts-50: 2.0"
    _write_run(base, "n_parts-50_4567abcd", {"p": 3.0})
    assert stored_value_text("12_ch", "p", ".1f", tmp_path) == \
        "n_parts-10_c8af3f38: 1.0; n_parts-50_0123abcd: 2.0; n_parts-50_4567abcd: 3.0"


def test_group_runs_by_all_parameters_but_one():
    runs = [{"run": name, "parameters": params} for name, params in (
        ("a", {"n_parts": [10, 1000], "n_test": 0}), ("b", {"n_parts": [50], "n_test": 0}),
        ("c", {"n_parts": [10], "n_test": 1000}), ("d", {"n_test": 0}))]
    groups = group_runs(runs, vary="n_parts")
    assert [[r["run"] for r in g] for g in groups] == [["a", "b", "d"], ["c"]]
    assert group_runs([], vary="n_parts") == []
    with pytest.raises(ValueError, match="vary must name a parameter"):
        group_runs(runs, vary="")
    with pytest.raises(ValueError, match="vary must name a parameter"):
        group_runs(runs, vary=("n_parts", ""))
    with pytest.raises(ValueError, match="vary must name a parameter"):
        group_runs(runs, vary=["n_parts"])


def test_group_runs_by_all_parameters_but_several():
    runs = [{"run": name, "parameters": params} for name, params in (
        ("a", {"verify_start": 0, "n_verify": 25, "timeout": 60}),
        ("b", {"verify_start": 25, "n_verify": 75, "timeout": 60}),
        ("c", {"verify_start": 0, "n_verify": 40, "timeout": 30}))]
    groups = group_runs(runs, vary=("verify_start", "n_verify"))
    assert [[r["run"] for r in g] for g in groups] == [["a", "b"], ["c"]]
    assert [[r["run"] for r in g] for g in group_runs(runs, vary=("verify_start",))] == \
        [["a"], ["b"], ["c"]]


def test_stored_runs_fill_in_parameters_added_later(tmp_path, monkeypatch):
    """A run stored before its chapter gained a parameter reads back with the value it used
    (ChapterSchema.added_later); a value the record holds is kept."""
    from certlab import parameters

    schema = parameters.SCHEMAS["42_linearity_grafting"]
    monkeypatch.setitem(parameters.SCHEMAS, "42_fake", schema)
    base = tmp_path / "results" / "paper" / "42_fake"
    _write_run(base, "old", {"va": 1.0}, parameters={"n_verify": 40})
    _write_run(base, "new", {"va": 1.0}, parameters={"n_verify": 25, "verify_start": 25})
    runs = {run["run"]: run["parameters"] for run in stored_runs("42_fake", tmp_path)}
    assert runs == {"old": {"n_verify": 40, "verify_start": 0},
                    "new": {"n_verify": 25, "verify_start": 25}}
    assert schema.added_later == {"verify_start": 0}


def test_consecutive_slices_chain_the_runs_that_can_merge():
    runs = [{"run": name, "parameters": {"verify_start": a, "n_verify": n}} for name, a, n in (
        ("c", 50, 25), ("a", 0, 25), ("e", 0, 10), ("b", 25, 25), ("d", 80, 20))]
    chains = consecutive_slices(runs, "verify_start", "n_verify")
    assert [[r["run"] for r in chain] for chain in chains] == [["e"], ["a", "b", "c"], ["d"]]
    assert consecutive_slices([], "verify_start", "n_verify") == []
    with pytest.raises(ValueError, match="must name parameters"):
        consecutive_slices(runs, "", "n_verify")


def _slice(name, start, count, total, commit="abc", wall=2.0, seed=1):
    return {"run": name, "parameters": {"seed": seed, "verify_start": start, "n_verify": count},
            "values": {"total": total}, "lib_hash": "h",
            "provenance": {"commit": commit, "wall_time_s": wall, "hardware": "x"}}


def test_merge_slice_runs_joins_chains_and_keeps_the_rest():
    def add(pieces):
        return {"total": sum(p["total"] for p in pieces)}

    runs = [_slice("b", 25, 25, 3, commit="def", wall=5.0), _slice("a", 0, 25, 2),
            _slice("lone", 0, 10, 7), _slice("other-seed", 25, 25, 1, seed=2)]
    merged = {run["run"]: run for run in merge_slice_runs(runs, "verify_start", "n_verify", add)}
    assert sorted(merged) == ["a to b", "lone", "other-seed"]
    joined = merged["a to b"]
    assert joined["values"] == {"total": 5} and joined["pieces"] == 2
    assert joined["parameters"] == {"seed": 1, "verify_start": 0, "n_verify": 50}
    assert joined["provenance"] == {"commit": "abc, def", "wall_time_s": 7.0, "hardware": "x"}
    assert merged["lone"] == runs[2] and "pieces" not in merged["lone"]
    # a merge that declines keeps the pieces, unchanged
    kept = merge_slice_runs(runs[:2], "verify_start", "n_verify", lambda pieces: None)
    assert sorted(run["run"] for run in kept) == ["a", "b"]
    assert runs[0]["run"] == "b" and runs[0]["values"] == {"total": 3}  # inputs untouched
