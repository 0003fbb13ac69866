"""The chapter notebooks: pairing, parameters, freshness, registry and table of contents."""

from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from certlab.chapters import CHAPTERS
from certlab.provenance import lib_hash
from certlab.run import chapter_defaults

ROOT = Path(__file__).resolve().parents[1]
CHAPTER_FILES = sorted((ROOT / "notebooks").glob("[0-9]*.py"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_chapters():
    assert CHAPTER_FILES, "no chapter notebooks found"


@pytest.mark.parametrize("py", CHAPTER_FILES, ids=lambda p: p.stem)
def test_py_and_ipynb_are_in_sync_and_current(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{py.name} has no executed {ipynb.name}: run make notebooks"
    source, executed = jupytext.read(py), nbformat.read(ipynb, as_version=4)
    assert _cells(source) == _cells(executed), f"{ipynb.name} is stale: re-execute {py.name}"
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), f"{ipynb.name} is not fully executed"
    assert not any(o.get("output_type") == "error" for c in code for o in c.get("outputs", []))
    stamp = executed.metadata.get("certlab", {})
    assert stamp.get("lib_hash") == lib_hash(), (
        f"{ipynb.name} was executed against another version of lib/certlab: re-run "
        f"make notebook NB=notebooks/{py.name}")
    assert stamp.get("parameters") == chapter_defaults(py)


@pytest.mark.parametrize("py", CHAPTER_FILES, ids=lambda p: p.stem)
def test_parameters_cell(py):
    defaults = chapter_defaults(py)
    assert defaults.get("device") == "auto" and isinstance(defaults.get("seed"), int)


@pytest.mark.parametrize("py", CHAPTER_FILES, ids=lambda p: p.stem)
def test_nbval_checks_are_tags_not_comments(py):
    """nbval markers are cell tags (not shown in the book), and every chapter but the
    benchmark page checks its key results through certlab.checks.KeyResults."""
    assert "NBVAL_" not in py.read_text(), f"{py.name}: use the nbval-check-output cell tag"
    cells = jupytext.read(py).cells
    checked = [c for c in cells if "nbval-check-output" in c.metadata.get("tags", [])]
    if py.stem == "90_benchmarks":
        return
    assert checked, f"{py.name} checks no key results with nbval"
    assert any("KeyResults(" in c.source for c in cells), f"{py.name} records no KeyResults"
    assert any(".report()" in c.source for c in checked), (
        f"{py.name}: the checked cells must print the key results with KeyResults.report()")


def test_registry_covers_every_chapter_and_paper_scale_names_are_parameters():
    registered = {c.stem for c in CHAPTERS}
    assert {p.stem for p in CHAPTER_FILES} <= registered
    for chapter in CHAPTERS:
        if chapter.path.is_file():
            unknown = set(chapter.paper_scale) - set(chapter_defaults(chapter.path))
            assert not unknown, f"{chapter.stem}: paper_scale names {unknown} are not parameters"


def _toc_files(entries):
    for entry in entries:
        if "file" in entry:
            yield entry["file"]
        yield from _toc_files(entry.get("sections", []))
        yield from _toc_files(entry.get("chapters", []))


def test_every_chapter_is_in_the_table_of_contents():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = set(_toc_files(toc["parts"])) | {toc["root"]}
    for f in files:
        assert any((ROOT / f).with_suffix(s).is_file() for s in (".md", ".ipynb")), f
    for py in CHAPTER_FILES:
        assert f"notebooks/{py.stem}" in files, f"{py.stem} is missing from _toc.yml"
