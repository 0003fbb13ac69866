"""certlab.checks.KeyResults: only values that print the same on every machine are checked."""

import json
from fractions import Fraction

import numpy as np
import pytest

from certlab.checks import RECORD_ENV, KeyResults


def test_exact_results_print_in_full_and_claims_say_whether_they_hold(capsys):
    key = KeyResults("chapter")
    key.exact("radius", np.int64(3))
    key.exact("radii", np.array([1.0, 2.0, -1.0]))
    key.exact("median", Fraction(9, 2))
    key.exact("medians", [Fraction(4, 2), Fraction(1, 2), "inf"])
    key.claim("the bound holds", np.bool_(True))
    key.claim("a failing claim", False)
    key.report()
    out = capsys.readouterr().out.splitlines()
    assert out == ["radius: 3", "radii: [1, 2, -1]", "median: 9/2", "medians: [2, 1/2, 'inf']",
                   "[holds] the bound holds", "[FAILS] a failing claim"]
    assert not key.all_claims_hold


@pytest.mark.parametrize("value", [0.1, np.float32(2.5), float("nan"), [1, 0.5], object()])
def test_exact_refuses_values_carrying_round_off(value):
    with pytest.raises(TypeError, match="exact result 'x'"):
        KeyResults("chapter").exact("x", value)


@pytest.mark.parametrize("holds", [1, 0.5, "yes", np.array([True, False])])
def test_claim_needs_one_boolean(holds):
    with pytest.raises(TypeError, match="needs a single boolean"):
        KeyResults("chapter").claim("c", holds)


def test_names_are_unique_and_measured_values_finite():
    key = KeyResults("chapter")
    key.measured("accuracy", 0.8)
    with pytest.raises(ValueError, match="recorded twice"):
        key.exact("accuracy", 1)
    with pytest.raises(ValueError, match="not finite"):
        key.measured("loss", float("inf"))
    with pytest.raises(ValueError, match="non-empty string"):
        KeyResults("")


def test_measured_values_are_recorded_not_printed(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv(RECORD_ENV, str(tmp_path / "keys"))
    target = tmp_path / "keys" / "chapter.json"
    key = KeyResults("chapter")
    key.measured("accuracy", np.float32(0.75))
    key.exact("n", 4)
    key.report()
    assert "accuracy" not in capsys.readouterr().out
    record = json.loads(target.read_text())
    assert record == {"chapter": "chapter", "exact": {"n": 4}, "claims": {},
                      "measured": {"accuracy": 0.75}}


def test_report_saves_the_record_for_the_runners(tmp_path, monkeypatch):
    from certlab.records import RECORD_ENV as RUN_RECORD_ENV

    target = tmp_path / "record.json"
    monkeypatch.setenv(RUN_RECORD_ENV, str(target))
    key = KeyResults("chapter")
    key.exact("median", Fraction(9, 2))
    key.claim("c", True)
    key.report()
    saved = json.loads(target.read_text())["key_results"]
    assert saved["exact"] == {"median": "9/2"} and saved["claims"] == {"c": True}
