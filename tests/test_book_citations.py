"""Citations in the book's prose are author-year and rendered by sphinxcontrib-bibtex.

With author-year citations, ``Lee et al. {cite}`lee2019``` reads "Lee et al. (Lee et al.,
2019)": write ``{cite:t}`lee2019``` ("Lee et al. (2019)") instead, and a work named by hand
("Dhillon et al. 2018") is a citation the bibliography does not know about.
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(ROOT.glob("notebooks/[0-9]*.py")) + sorted(ROOT.glob("book/*.md"))

#: "Name et al." (or "Name and Other") directly before a parenthetical citation.
REDUNDANT = re.compile(r"\b[A-Z][\w-]+(?:\s+et al\.|\s+and\s+[A-Z][\w-]+)\s*\{cite(?::p)?\}`")
#: A work cited by hand: "Name et al. 2018", "Name et al., 2018", "Name et al. (2018)".
BY_HAND = re.compile(r"\b[A-Z][\w-]+\s+et al\.,?\s+\(?(?:19|20)\d\d\b")


def _prose(path: Path) -> str:
    if path.suffix == ".md":
        return path.read_text()
    cells = jupytext.read(path).cells
    return "\n\n".join(c.source for c in cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_citations_are_author_year_roles(path):
    text = _prose(path)
    redundant = [m.group(0).replace("\n", " ") for m in REDUNDANT.finditer(text)]
    by_hand = [m.group(0) for m in BY_HAND.finditer(text)]
    problems = [f"write {{cite:t}}`key` instead of: {r!r}" for r in redundant]
    problems += [f"cite with {{cite:p}}/{{cite:t}} and a references.bib entry: {h!r}"
                 for h in by_hand]
    assert not problems, "\n".join(problems)


def test_the_checks_find_what_they_look_for():
    text = ("as shown by Lee et al. {cite}`lee2019` and Kipf and Welling\n{cite:p}`kipf2017gcn`; "
            "pruning (Dhillon et al. 2018; Ye et al., 2020) and Chen et al. (2022)")
    assert len(REDUNDANT.findall(text)) == 2
    assert BY_HAND.findall(text) == ["Dhillon et al. 2018", "Ye et al., 2020",
                                     "Chen et al. (2022"]
    assert not REDUNDANT.search("{cite:t}`lee2019` showed") and not BY_HAND.search("et al.")
