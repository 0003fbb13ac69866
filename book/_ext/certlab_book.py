"""Sphinx extension for the certlab book: an author-year bibliography and page fixes.

* Registers the pybtex style ``author_year`` (``bibtex_default_style`` in ``_config.yml``):
  entries sorted by author, year and title, each labelled ``[Bojchevski et al., 2020]`` so that
  the bibliography reads like the author-year citations in the text. Two works with the same
  label get ``2021a``, ``2021b``.
* Registers the citation style ``author_year_round`` (``bibtex_reference_style``):
  sphinxcontrib-bibtex's author-year style with round brackets, ``(Lee et al., 2019)`` and
  ``Lee et al. (2019)``.
* Registers the role ``paper-scale``: ``{paper-scale}`12_smoothing_node_classification
  sparse_avg_max_rd .2f``` prints that value of the chapter's stored paper-scale runs
  (``results/paper/<chapter>/*/record.json``, through :func:`certlab.records.stored_value_text`),
  or "not run yet", so that the reproduction-status page quotes no number by hand;
  ``chapter[n_seeds=5]`` keeps only the runs with that parameter value.
* Removes duplicate inline scripts from the pages (sphinx-thebe registers its configuration
  script twice, which throws ``SyntaxError: Identifier 'THEBE_JS_URL' has already been
  declared`` on every page).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from sphinxcontrib.bibtex.plugin import register_plugin as register_bibtex_plugin
from sphinxcontrib.bibtex.style.referencing import BracketStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle


def _last_name(person: Any) -> str:
    """Plain-text last name of a pybtex Person (LaTeX accents decoded, braces dropped)."""
    raw = " ".join(person.prelast_names + person.last_names)
    return Text.from_latex(raw).render_as("text")


def author_year_label(entry: Any) -> str:
    """``Name, 2020``, ``Name and Other, 2020`` or ``Name et al., 2020``."""
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    if not persons:
        name = entry.fields.get("organization") or entry.key
    elif len(persons) == 1:
        name = _last_name(persons[0])
    elif len(persons) == 2:
        name = f"{_last_name(persons[0])} and {_last_name(persons[1])}"
    else:
        name = f"{_last_name(persons[0])} et al."
    return f"{name}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels ``Author et al., year``; duplicates get ``a``, ``b``, ... after the year."""

    def format_labels(self, sorted_entries: Iterable[Any]) -> Iterator[str]:
        labels = [author_year_label(entry) for entry in sorted_entries]
        counts = Counter(labels)
        used: Counter = Counter()
        for label in labels:
            if counts[label] > 1:
                yield label + string.ascii_lowercase[used[label]]
                used[label] += 1
            else:
                yield label


class AuthorYearStyle(UnsrtStyle):
    """The unsrt entry format, sorted by author, year and title, with author-year labels."""

    default_label_style = AuthorYearLabelStyle
    default_sorting_style = "author_year_title"


def _round(sep: str = ", ") -> BracketStyle:
    return BracketStyle(left="(", right=")", sep=sep)


@dataclass
class RoundAuthorYearReferenceStyle(AuthorYearReferenceStyle):
    """Author-year citations in round brackets: ``(Bojchevski et al., 2020; Lee et al.,
    2019)`` for ``{cite:p}``, ``Bojchevski et al. (2020)`` for ``{cite:t}``."""

    bracket_parenthetical: BracketStyle = field(default_factory=lambda: _round("; "))
    bracket_textual: BracketStyle = field(default_factory=_round)


register_plugin("pybtex.style.labels", "author_year", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)
register_bibtex_plugin("sphinxcontrib.bibtex.style.referencing", "author_year_round",
                       RoundAuthorYearReferenceStyle)


def _drop_duplicate_scripts(app: Any, pagename: str, templatename: str, context: dict,
                            doctree: Any) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        key = (str(getattr(script, "filename", script) or ""),  # inline: None or ""
               str(getattr(script, "attributes", {}).get("body", "")))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    scripts[:] = unique


def parse_paper_scale(text: str) -> tuple[str, str, str, dict]:
    """``"chapter[name=value,...] key [format]"`` -> ``(chapter, key, format, where)`` for
    :func:`certlab.records.stored_value_text`. The key may contain spaces
    (``avg_max_rd.structure GCN``); the format is ``>`` or a number format such as ``.2f`` or
    ``+.1f``, empty when absent. The optional ``[name=value,...]`` after the chapter keeps
    only the stored runs with those parameter values (values read as JSON, else as text:
    ``[n_seeds=5]``), ``{}`` when absent. Raises ValueError when the key is missing or a
    filter is malformed."""
    chapter, _, rest = str(text).strip().partition(" ")
    rest = rest.strip()
    if not chapter or not rest:
        raise ValueError(f"expected 'chapter key [format]', got {text!r}")
    where: dict = {}
    match = re.fullmatch(r"([^\[\]]+)\[([^\[\]]*)\]", chapter)
    if match:
        chapter = match.group(1)
        for item in match.group(2).split(","):
            name, sep, value = item.partition("=")
            if not sep or not name.strip() or not value.strip():
                raise ValueError(f"expected [name=value,...] after the chapter, got {text!r}")
            try:
                where[name.strip()] = json.loads(value.strip())
            except json.JSONDecodeError:
                where[name.strip()] = value.strip()
    elif "[" in chapter or "]" in chapter:
        raise ValueError(f"expected [name=value,...] after the chapter, got {text!r}")
    last = rest.rsplit(" ", 1)[-1]
    is_format = last == ">" or re.fullmatch(r"[+\- ]?\.\d+[eEfFgG%]", last) is not None
    key, _, fmt = rest.rpartition(" ") if " " in rest and is_format else (rest, "", "")
    return chapter, key, fmt, where


def paper_scale_role(name: str, rawtext: str, text: str, lineno: int, inliner: Any,
                     options: dict | None = None, content: list | None = None):
    """``chapter key [format]`` -> the stored paper-scale value as plain text."""
    from docutils import nodes

    from certlab.records import stored_value_text

    try:
        chapter, key, fmt, where = parse_paper_scale(text)
        value = stored_value_text(chapter, key, fmt, where=where)
    except (ValueError, TypeError) as err:
        msg = inliner.reporter.error(f"paper-scale {text!r}: {err}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    return [nodes.Text(value)], []


def setup(app: Any) -> dict:
    app.add_role("paper-scale", paper_scale_role)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
