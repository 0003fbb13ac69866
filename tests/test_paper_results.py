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
from certlab.records import PAPER_RESULTS, stored_runs
from test_book_bibliography import _extension  # loads book/_ext/certlab_book.py once

ROOT = Path(__file__).resolve().parents[1]
RUN_DIRS = sorted(p for p in (ROOT / PAPER_RESULTS).glob("*/*") if p.is_dir())
ROLE = re.compile(r"\{paper-scale\}`([^`]+)`")


parse_stored_value_reference = _extension().parse_paper_scale  # the book's role parser


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
    chapter, key, _ = parse_stored_value_reference(text)
    source = ROOT / "notebooks" / f"{chapter}.py"
    assert source.is_file(), f"{page}: no chapter {chapter!r}"
    top = key.split(".")[0]
    code = source.read_text()
    saved = code[code.index("save_record("):]
    assert f'"{top}"' in saved or f"'{top}'" in saved, \
        f"{page}: chapter {chapter} saves no value {top!r}"


def test_the_role_splits_chapter_key_and_format():
    parse = parse_stored_value_reference
    assert parse("12_ch sparse_avg_max_rd .2f") == ("12_ch", "sparse_avg_max_rd", ".2f")
    assert parse("12_ch avg_max_rd.structure GCN .1f") == ("12_ch", "avg_max_rd.structure GCN",
                                                          ".1f")
    assert parse("31_ch headline.change.10 +.1f") == ("31_ch", "headline.change.10", "+.1f")
    assert parse("22_ch ranked >") == ("22_ch", "ranked", ">")
    assert parse("22_ch avg_max_rd.structure GCN") == ("22_ch", "avg_max_rd.structure GCN", "")
    with pytest.raises(ValueError, match="chapter key"):
        parse("22_ch")
