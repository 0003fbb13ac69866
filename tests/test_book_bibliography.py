"""The book's bibliography style (book/_ext/certlab_book.py): author-year labels and round
brackets, matching the author-year citations in the text."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinxcontrib.bibtex")
from pybtex.database import parse_file, parse_string  # noqa: E402
from pybtex.plugin import find_plugin  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _extension():
    """The extension, loaded once per process (other tests load it too, and loading twice
    would register its pybtex plugins twice)."""
    if "certlab_book" not in sys.modules:  # dataclasses look their module up there
        spec = importlib.util.spec_from_file_location(
            "certlab_book", ROOT / "book" / "_ext" / "certlab_book.py")
        sys.modules["certlab_book"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["certlab_book"])
    return sys.modules["certlab_book"]


EXT = _extension()


def _labels(bib: str) -> list[str]:
    entries = list(parse_string(bib, "bibtex").entries.values())
    return list(EXT.AuthorYearLabelStyle().format_labels(entries))


def test_labels_are_author_year():
    bib = r"""
    @misc{one, author = {G{\"u}nnemann, Stephan}, title = {A}, year = {2020}}
    @misc{two, author = {Kipf, Thomas N. and Welling, Max}, title = {B}, year = {2017}}
    @misc{three, author = {Lee, A. and Yuan, B. and Chang, C.}, title = {C}, year = {2019}}
    @misc{none, title = {D}, year = {2001}}
    """
    assert _labels(bib) == ["Günnemann, 2020", "Kipf and Welling, 2017", "Lee et al., 2019",
                            "none, 2001"]


def test_equal_labels_get_letters():
    bib = r"""
    @misc{a, author = {Wang, A. and B, B. and C, C.}, title = {X}, year = {2021}}
    @misc{b, author = {Wang, Z. and Y, Y. and X, X.}, title = {Y}, year = {2021}}
    @misc{c, author = {Wang, Q.}, title = {Z}, year = {2021}}
    """
    assert _labels(bib) == ["Wang et al., 2021a", "Wang et al., 2021b", "Wang, 2021"]


def test_the_book_uses_the_registered_styles():
    config = (ROOT / "_config.yml").read_text()
    assert "bibtex_default_style: author_year\n" in config
    assert "bibtex_reference_style: author_year_round\n" in config
    assert find_plugin("pybtex.style.formatting", "author_year") is EXT.AuthorYearStyle
    from sphinxcontrib.bibtex.plugin import find_plugin as find_bibtex_plugin

    style = find_bibtex_plugin("sphinxcontrib.bibtex.style.referencing", "author_year_round")()
    assert (style.bracket_parenthetical.left, style.bracket_parenthetical.right) == ("(", ")")
    assert style.bracket_parenthetical.sep == "; "


def test_book_bibliography_labels_are_unique_and_sorted():
    bib = parse_file(ROOT / "book" / "references.bib")
    style = EXT.AuthorYearStyle()
    formatted = list(style.format_entries(bib.entries.values()))
    labels = [entry.label for entry in formatted]
    assert len(set(labels)) == len(labels)
    assert labels == sorted(labels, key=str.lower), "entries are sorted by author and year"
    assert "Dhillon et al., 2018" in labels and "Ye et al., 2020" in labels
