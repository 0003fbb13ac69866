import json

import numpy as np
import pytest

from certlab.benchmarking import (BenchmarkRecord, load_records, measure, natural_key,
                                  records_overview, records_table, save_record)


def _rows(text):
    """The (label, value) rows of the record's list-table."""
    lines = text.splitlines()
    return [(a[len("* - "):], b[len("  - "):]) for a, b in zip(lines, lines[1:])
            if a.startswith("* - ") and b.startswith("  - ")]


def test_record_round_trip(tmp_path):
    path = save_record("toy", description="a toy", target="ratio >= 2", target_met=True,
                       results={"speedup": 3.25, "nested": {"a": 1, "b": [1, 2]}},
                       parameters={"n": 5}, wall_time_s=1.5, command="python bench_toy.py",
                       directory=tmp_path)
    raw = json.loads(path.read_text())
    assert raw["provenance"]["parameters"] == {"n": 5} and raw["provenance"]["wall_time_s"] == 1.5
    assert "headline" not in raw
    (record,) = load_records(tmp_path)
    assert record.name == "toy" and record.target_met is True and record.source == path
    rows = dict(_rows(record.to_markdown()))
    assert rows["measured"] == "a toy" and rows["target"] == "ratio \\>= 2"
    assert rows["target met"] == "**yes**"
    assert rows["result: speedup"] == "3.25"  # top-level scalars by default; not nested.a
    assert "result: nested / a" not in rows
    assert rows["command"] == "`python bench_toy.py`" and rows["wall time"] == "1.5 s"
    assert rows["full record"] == "`benchmarks/results/toy.json`"
    linked = dict(_rows(record.to_markdown(link="../benchmarks/results/toy.json")))
    assert linked["full record"] == "{download}`toy.json <../benchmarks/results/toy.json>`"
    table = records_table([record])
    assert table.loc["toy", "target met"] == "yes"


def test_loose_records_are_read_too(tmp_path):
    (tmp_path / "loose.json").write_text(json.dumps({"speedup": 2.0, "provenance": {}}))
    (record,) = load_records(tmp_path)
    assert record.name == "loose" and record.results == {"speedup": 2.0}
    assert record.target_met is None
    assert dict(_rows(record.to_markdown()))["target met"] == "no target"


def test_measure():
    calls = []
    out = measure(lambda: calls.append(1), repeat=4, trace_memory=True)
    assert len(calls) == 4 and out["min_s"] <= out["median_s"] and "peak_python_memory_mib" in out
    with pytest.raises(ValueError, match="repeat"):
        measure(lambda: None, repeat=0)


def test_natural_order():
    names = ["P10", "P2", "P100", "P1", "b", "A"]
    assert sorted(names, key=natural_key) == ["A", "b", "P1", "P2", "P10", "P100"]
    assert sorted(["x_P10.y", "x_P9.y"], key=natural_key) == ["x_P9.y", "x_P10.y"]


def _nested_record():
    return BenchmarkRecord(
        name="nested", target="more verified", target_met=False,
        results={"models": {"m10": {"va": 0.5, "time_s": 2.0}, "m2": {"va": 0.25, "time_s": 1.0}},
                 "table": {f"P{p}": {"acc": p / 1000} for p in (1, 10, 2, 100)},
                 "wide": {"r1": {f"c{i}": i for i in range(9)},
                          "r2": {f"c{i}": -i for i in range(9)}},
                 "big": 295972.90956, "tiny": 8.43580884979311e-05, "ok": True,
                 "series": list(range(20))},
        provenance={"date": "2026-11-21T10:38:06+00:00", "commit": "7a3e11e6afdf61d8+dirty",
                    "hardware": {"cpu_count": 2, "torch": "2.13.0+cpu"}})


def test_headline_patterns_match_dotted_keys_in_natural_order():
    record = _nested_record()
    rows = record.headline_rows(["models.*.va", "ok"])
    assert rows == [("models.m2.va", 0.25), ("models.m10.va", 0.5), ("ok", True)]
    with pytest.raises(ValueError, match="'models.\\*.missing'"):
        record.headline_rows(["models.*.missing"])
    with pytest.raises(TypeError, match="list of strings"):
        record.headline_rows("models.*.va")
    text = record.to_markdown(headline=["models.*.va"])
    rows = dict(_rows(text))
    assert rows["result: models / m2 / va"] == "0.25" and rows["target met"] == "**no**"
    assert rows["measured on"] == "2026-11-21 10:38 UTC"
    assert rows["commit"] == "`7a3e11e6afdf` with uncommitted changes"
    assert rows["hardware"].startswith("2 CPU cores") and "no GPU" in rows["hardware"]


def test_stored_headline_wins(tmp_path):
    save_record("h", description="", target="t", target_met=np.bool_(True),
                results={"a": 1, "b": 2}, headline={"the answer": 42}, directory=tmp_path)
    (record,) = load_records(tmp_path)
    assert record.target_met is True
    assert record.headline_rows(["a"]) == [("the answer", 42)]
    assert dict(_rows(record.to_markdown()))["result: the answer"] == "42"


def test_details_are_tables_naturally_sorted_and_fitted():
    text = _nested_record().to_markdown()
    details = text[text.index("````{dropdown}"):]
    # loose values first, formatted for people
    assert "| big | 295,973 |" in details and "| tiny | 8.44e-05 |" in details
    assert "| ok | yes |" in details
    assert "| series | \\[0, 1, 2, 3, 4, 5, 6, 7, ... (20 values)\\] |" in details
    # a dict of dicts is one table, rows in natural order (P1, P2, P10, P100)
    order = [details.index(f"| P{p} |") for p in (1, 2, 10, 100)]
    assert order == sorted(order)
    # 9 columns but 2 rows: transposed, so the table has 3 columns
    wide = details[details.index("**wide**"):]
    assert wide.splitlines()[2] == "|  | r1 | r2 |"
    assert "| c8 | 8 | \\-8 |" in wide
    # no key-value dump of dotted keys for the grouped results
    assert "models.m10" not in details


def test_markup_in_records_is_escaped():
    record = BenchmarkRecord(name="esc", description="a | b", target="x < 1 and $y$ *z*",
                             results={"-neg": -1.5})
    rows = dict(_rows(record.to_markdown(details=False)))
    assert rows["measured"] == "a \\| b"
    assert rows["target"] == "x \\< 1 and \\$y\\$ \\*z\\*"
    assert rows["result: \\-neg"] == "\\-1.5"
    assert "````{dropdown}" not in record.to_markdown(details=False)


def test_overview_has_one_line_per_record():
    records = [_nested_record(), BenchmarkRecord(name="b", target_met=True)]
    lines = records_overview(records).splitlines()
    assert lines[0] == "| benchmark | target met | measured on | commit | wall time |"
    assert lines[2].startswith("| `nested` | **no** | 2026-11-21 10:38 UTC |")
    assert lines[3].startswith("| `b` | yes |")


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="directory"):
        load_records(tmp_path / "missing")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        load_records(tmp_path)
    kwargs = dict(description="", target="", results={}, directory=tmp_path / "out")
    with pytest.raises(ValueError, match="name"):
        save_record("../escape", target_met=None, **kwargs)
    with pytest.raises(TypeError, match="target_met"):
        save_record("x", target_met="yes", **kwargs)
    with pytest.raises(TypeError, match="results"):
        save_record("x", target_met=None, **{**kwargs, "results": [1]})
    with pytest.raises(ValueError, match="headline"):
        save_record("x", target_met=None, headline={"a": {"b": 1}}, **kwargs)
    with pytest.raises(TypeError, match="headline"):
        save_record("x", target_met=None, headline={1: 2}, **kwargs)
    assert not (tmp_path / "out").exists()


def test_hardware_is_described_in_words_with_singular_and_plural():
    from certlab.provenance import describe_hardware

    cpu = {"cpu_count": 2, "torch_threads": 1, "memory_gib": 23.5, "torch": "2.13.0+cpu"}
    assert describe_hardware(cpu) == ("2 CPU cores, 1 torch thread, no GPU, 23.5 GiB memory, "
                                      "torch 2.13.0+cpu")
    assert describe_hardware(cpu, short=True) == "2-core CPU, 1 thread"
    gpu = {"cpu_count": 16, "torch_threads": 16, "gpu": "NVIDIA H100 80GB HBM3"}
    assert describe_hardware(gpu) == "16 CPU cores, 16 torch threads, GPU: NVIDIA H100 80GB HBM3"
    assert describe_hardware(gpu, short=True) == "NVIDIA H100 80GB HBM3"
    assert describe_hardware({}) == "" and describe_hardware({}, short=True) == ""
    with pytest.raises(TypeError, match="hardware"):
        describe_hardware("2 cores")
