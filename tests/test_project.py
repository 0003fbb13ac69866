"""Project set-up: pinned stack consistency, CI wiring, bibliography."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_environment_yml_agrees_with_the_lock_file():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    lock = _lock()
    assert len(pip_section) >= 15
    for requirement in pip_section:
        name, version = requirement.split("==")
        name = name.lower()
        if name == "torch":
            continue
        assert lock.get(name) == version, f"{name}: environment.yml {version}, lock {lock.get(name)}"
    for needed in ("jupyter-book", "torch-geometric", "ortools", "nbval", "papermill", "jupytext",
                   "dask", "distributed"):
        assert needed in {r.split("==")[0].lower() for r in pip_section}


def test_special_pins_agree_between_makefile_and_environment():
    makefile = (ROOT / "Makefile").read_text()
    env_text = (ROOT / "environment.yml").read_text()
    for pin in re.findall(r"(torch==[\d.]+|auto-lirpa==[\d.]+)", makefile):
        assert pin in env_text, pin
    assert "torch==2.13.0" in makefile and "auto-lirpa==0.3" in makefile
    assert _lock()["jupyter-book"] == "1.0.4.post1"
    assert _lock()["sphinx"].startswith("7.")


def test_ci_runs_make_test_with_the_shared_data():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "CERTLAB_DATA" in ci and "shared/data" in ci


def test_every_citation_has_a_bibliography_entry():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    used = set()
    for path in [*ROOT.glob("book/*.md"), *ROOT.glob("notebooks/*.py")]:
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", path.read_text()):
            used.update(k.strip() for k in group.split(","))
    assert used and used <= keys, f"unknown citation keys: {used - keys}"
