"""Stored paper-scale results and the pages that quote them.

* every run under ``results/paper/<chapter>/`` is complete: a ``record.json`` whose chapter and
  parameters validate, and a ``provenance.json`` with the command, commit, hardware and wall
  time;
* every ``{paper-scale}`` role in the book names an existing chapter and a value that chapter
  saves with ``save_record`` (a misspelt key would print "not run yet" for ever).
"""

import json
import re
from pathlib import Path

import pytest

from certlab.parameters import complete_stored_parameters, validate_chapter_parameters
from certlab.run import chapter_defaults
from certlab.records import PAPER_RESULTS, stored_runs
from test_book_bibliography import _extension  # loads book/_ext/certlab_book.py once

ROOT = Path(__file__).resolve().parents[1]
RUN_DIRS = sorted(p for p in (ROOT / PAPER_RESULTS).glob("*/*") if p.is_dir())
ROLE = re.compile(r"\{paper-scale\}`([^`]+)`")


parse_stored_value_reference = _extension().parse_paper_scale  # the book's role parser


def chapter_parameter_names(chapter):
    """The parameter names of a chapter (its parameters cell)."""
    return chapter_defaults(ROOT / "notebooks" / f"{chapter}.py")


@pytest.mark.parametrize("run_dir", RUN_DIRS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_run_is_complete_with_provenance(run_dir):
    record = json.loads((run_dir / "record.json").read_text())
    prov = json.loads((run_dir / "provenance.json").read_text())
    chapter = run_dir.parent.name
    assert Path(record["chapter"]).stem == chapter
    assert (ROOT / "notebooks" / f"{chapter}.py").is_file()
    assert record["values"], "a stored run without values"
    validate_chapter_parameters(chapter, complete_stored_parameters(chapter, record["parameters"]))
    for field in ("command", "commit", "wall_time_s"):
        assert prov.get(field) not in (None, ""), f"provenance lacks {field}"
    assert any(k in prov for k in ("hardware", "machine", "platform")), sorted(prov)
    assert stored_runs(chapter, ROOT), "stored_runs does not see the run"


@pytest.mark.parametrize("folder", sorted({p.parent for p in RUN_DIRS}), ids=lambda p: p.name)
def test_stored_sweep_summaries_are_named_after_their_spec(folder):
    """Each ``sweep-<spec>.json`` names an existing spec of this chapter (several specs can
    share a folder, so no summary overwrites another's) and lists only stored points."""
    summaries = sorted(folder.glob("sweep*.json"))
    assert summaries, f"{folder.name}: no sweep summary stored"
    for path in summaries:
        summary = json.loads(path.read_text())
        spec = ROOT / summary["spec"]
        assert path.name == f"sweep-{spec.stem}.json", path.name
        assert spec.is_file() and Path(summary["chapter"]).stem == folder.name
        for point in summary["done"] + summary["skipped"]:
            assert (folder / point / "record.json").is_file(), f"{path.name}: {point} missing"


def _roles():
    for page in sorted((ROOT / "book").glob("*.md")):
        for text in ROLE.findall(page.read_text()):
            yield page.name, text


def test_the_status_page_quotes_stored_runs():
    assert any(name == "reproduction_status.md" for name, _ in _roles())


@pytest.mark.parametrize("page,text", list(_roles()), ids=lambda v: str(v)[:60])
def test_every_paper_scale_role_names_a_saved_value(page, text):
    chapter, key, _, where = parse_stored_value_reference(text)
    assert all(name in chapter_parameter_names(chapter) for name in where), \
        f"{page}: {text!r} filters on a parameter the chapter does not have"
    source = ROOT / "notebooks" / f"{chapter}.py"
    assert source.is_file(), f"{page}: no chapter {chapter!r}"
    top = key.split(".")[0]
    code = source.read_text()
    saved = code[code.index("save_record("):]
    assert f'"{top}"' in saved or f"'{top}'" in saved, \
        f"{page}: chapter {chapter} saves no value {top!r}"


def test_the_role_splits_chapter_key_and_format():
    parse = parse_stored_value_reference
    assert parse("12_ch sparse_avg_max_rd .2f") == ("12_ch", "sparse_avg_max_rd", ".2f", {})
    assert parse("12_ch avg_max_rd.structure GCN .1f") == ("12_ch", "avg_max_rd.structure GCN",
                                                          ".1f", {})
    assert parse("31_ch headline.change.10 +.1f") == ("31_ch", "headline.change.10", "+.1f", {})
    assert parse("22_ch ranked >") == ("22_ch", "ranked", ">", {})
    assert parse("22_ch avg_max_rd.structure GCN") == ("22_ch", "avg_max_rd.structure GCN", "",
                                                       {})
    assert parse("22_ch[n_seeds=5,real_graph=cora_ml] x .1f") == \
        ("22_ch", "x", ".1f", {"n_seeds": 5, "real_graph": "cora_ml"})
    with pytest.raises(ValueError, match="chapter key"):
        parse("22_ch")
    for bad in ("22_ch[n_seeds] x", "22_ch[=5] x", "22_ch[n_seeds=5 x"):
        with pytest.raises(ValueError, match=r"\[name=value"):
            parse(bad)


def test_the_role_filter_keeps_runs_with_those_parameters(tmp_path):
    from certlab.records import stored_value_text

    base = tmp_path / PAPER_RESULTS / "22_ch"
    for name, seeds, value in (("five", 5, 1.5), ("one", 1, 2.5)):
        (base / name).mkdir(parents=True)
        (base / name / "record.json").write_text(json.dumps(
            {"parameters": {"n_seeds": seeds}, "values": {"x": value}}))
        (base / name / "provenance.json").write_text("{}")
    assert stored_value_text("22_ch", "x", ".1f", tmp_path) == "five: 1.5; one: 2.5"
    assert stored_value_text("22_ch", "x", ".1f", tmp_path, where={"n_seeds": 5}) == "1.5"
    assert stored_value_text("22_ch", "x", ".1f", tmp_path, where={"n_seeds": 2}) == \
        "not run yet"
    with pytest.raises(TypeError, match="where"):
        stored_value_text("22_ch", "x", where=[("n_seeds", 5)], root=tmp_path)


def test_stored_slices_of_chapter_42_merge_into_one_run(tmp_path):
    """The real stored first slice of chapter 42 and a copy of it placed as the next slice
    (images 25-49, same model) read back as one 50-image run, in the chapter and on the
    status page; a slice of another model is refused, loudly."""
    import shutil

    from certlab.records import stored_value_text
    from certlab.verification.report import headline_key

    chapter = "42_linearity_grafting"
    source = ROOT / PAPER_RESULTS / chapter / "verify_start-0_c0e810c4"
    base = tmp_path / PAPER_RESULTS / chapter
    shutil.copytree(source, base / "a-first")
    shutil.copytree(source, base / "b-next")
    record = json.loads((base / "b-next" / "record.json").read_text())
    record["parameters"]["verify_start"] = 25
    for per_model in record["values"]["per_image"].values():
        per_model["verify_start"] = 25
    (base / "b-next" / "record.json").write_text(json.dumps(record))
    first = json.loads((source / "record.json").read_text())["values"]
    assert [run["run"] for run in stored_runs(chapter, tmp_path)] == ["a-first", "b-next"]
    (merged,) = stored_runs(chapter, tmp_path, merge_slices=True)
    assert merged["run"] == "a-first to b-next" and merged["pieces"] == 2
    assert merged["parameters"]["n_verify"] == 50 and merged["parameters"]["verify_start"] == 0
    for model, per_image in first["per_image"].items():
        va, ra = headline_key(model, "va"), headline_key(model, "ra")
        verified = per_image["statuses"].count("verified")
        assert merged["values"]["headline"][va] == 100 * (2 * verified) / 50
        assert merged["values"]["headline"][va] == first["headline"][va]
        assert merged["values"]["headline"][ra] == first["headline"][ra]
    assert stored_value_text(chapter, "headline.baseline_va", ".1f", tmp_path) == \
        f"{first['headline']['baseline_va']:.1f}"
    for per_model in record["values"]["per_image"].values():
        per_model["model_digest"] = "0" * 16
    (base / "b-next" / "record.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="model_digest"):
        stored_runs(chapter, tmp_path, merge_slices=True)
