"""certlab.chapters: looking chapters up and the paper-scale command the chapters render."""

import ast
import shlex

import pytest

from certlab.chapters import CHAPTERS, chapter, paper_scale_command


def test_chapter_lookup():
    assert chapter("42_linearity_grafting").title == "Linearity grafting on MNIST"
    with pytest.raises(KeyError, match="no chapter"):
        chapter("99_missing")


@pytest.mark.parametrize("stem", [c.stem for c in CHAPTERS if c.paper_scale])
def test_paper_scale_command_round_trips_and_fits(stem):
    command = paper_scale_command(stem, width=88)
    lines = command.split("\n")
    # a line is longer only when it holds a single argument that alone is longer
    assert all(len(line) <= 88 or line.count(" -p ") == 1 for line in lines), lines
    assert all(line.endswith(" \\") for line in lines[:-1])
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:4] == ["python", "-m", "certlab.run", f"notebooks/{stem}.py"]
    pairs = words[4:]
    assert pairs[::3] == ["-p"] * (len(pairs) // 3)
    parsed = {name: ast.literal_eval(value) for name, value in zip(pairs[1::3], pairs[2::3])}
    assert parsed == chapter(stem).paper_scale


def test_paper_scale_command_without_parameters_and_bad_width():
    assert paper_scale_command("11_smoothing_certificate") == (
        "python -m certlab.run notebooks/11_smoothing_certificate.py")
    with pytest.raises(ValueError, match="width"):
        paper_scale_command("31_ensemble_certificates", width=5)
