"""The papermill runner: parameter validation, parameterized runs with provenance, records,
refusals of bad output folders and time-outs, and clean stops on SIGINT / SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import certlab.run
from certlab.run import (ParameterError, chapter_defaults, check_parameters, main,
                         parse_parameters, run_chapter)

CHAPTER = textwrap.dedent('''\
    # %% tags=["parameters"]
    n_samples = 10
    rate = 0.5
    dataset = "cora_ml"
    fail = False
    device = "auto"
    seed = 0

    # %%
    # NBVAL_CHECK_OUTPUT
    if fail:
        raise RuntimeError("asked to fail")
    print(dataset, n_samples * rate)

    # %%
    from certlab.records import save_record

    save_record({"product": n_samples * rate, "dataset": dataset})
    ''')


@pytest.fixture
def chapter(tmp_path):
    path = tmp_path / "nb" / "toy.py"
    path.parent.mkdir()
    path.write_text(CHAPTER)
    return path


def test_defaults_and_parsing(chapter):
    assert chapter_defaults(chapter) == {"n_samples": 10, "rate": 0.5, "dataset": "cora_ml",
                                         "fail": False, "device": "auto", "seed": 0}
    params = parse_parameters(chapter, [("n_samples", "100"), ("rate", "1"),
                                        ("dataset", "citeseer"), ("device", '"cpu"')])
    assert params == {"n_samples": 100, "rate": 1.0, "dataset": "citeseer", "device": "cpu"}
    with pytest.raises(ParameterError, match="unknown parameter 'n_sample'.*n_samples"):
        parse_parameters(chapter, [("n_sample", "3")])
    with pytest.raises(ParameterError, match="'n_samples' expects a int"):
        parse_parameters(chapter, [("n_samples", "1.5")])
    with pytest.raises(ParameterError, match="'fail' expects a bool"):
        parse_parameters(chapter, [("fail", "1")])


def test_chapter_without_parameters_cell(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("# %%\nx = 1\n")
    with pytest.raises(ValueError, match="exactly one cell tagged 'parameters'"):
        chapter_defaults(path)
    with pytest.raises(ValueError, match="py:percent"):
        chapter_defaults(tmp_path / "bad.ipynb")


def test_cli_errors(chapter, capsys):
    assert main([str(chapter), "-p", "nope", "1"]) == 2
    assert "unknown parameter 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--inplace", str(chapter), "-p", "n_samples", "3"])


def test_parameterized_run_writes_results_with_provenance(chapter, tmp_path):
    out = tmp_path / "results" / "toy-run"
    assert main([str(chapter), "-p", "n_samples", "4", "--out", str(out)]) == 0
    record = json.loads((out / "provenance.json").read_text())
    assert record["parameters"]["n_samples"] == 4 and record["parameters"]["seed"] == 0
    for key in ("commit", "hardware", "wall_time_s", "date", "command", "lib_hash"):
        assert record[key] not in (None, "")
    executed = (out / "toy.ipynb").read_text()
    assert "cora_ml 2.0" in executed
    assert not chapter.with_suffix(".ipynb").exists()  # the paired notebook is untouched
    saved = json.loads((out / "record.json").read_text())
    assert saved["values"] == {"product": 2.0, "dataset": "cora_ml"}
    assert saved["parameters"]["n_samples"] == 4 and saved["lib_hash"] == record["lib_hash"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["toy-run"]  # no staging debris
    # a failing run leaves nothing behind
    failed = tmp_path / "results" / "toy-failed"
    assert main([str(chapter), "-p", "fail", "True", "--out", str(failed)]) == 1
    assert not failed.exists() or not any(failed.iterdir())


def test_duplicate_parameter_is_refused(chapter, tmp_path, capsys):
    with pytest.raises(ParameterError, match="'n_samples' given twice .*-p n_samples 3 and "
                                             "-p n_samples 4"):
        parse_parameters(chapter, [("n_samples", "3"), ("n_samples", "4")])
    out = tmp_path / "dup"
    assert main([str(chapter), "-p", "n_samples", "3", "-p", "n_samples", "4",
                 "--out", str(out)]) == 2
    assert "given twice" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("value", ["-5", "0", "abc", "1.5"])
def test_bad_timeout_is_refused(chapter, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main([str(chapter), "--timeout", value, "--out", str(tmp_path / "t")])
    assert exc.value.code == 2
    assert "--timeout: must be a positive whole number of seconds" in capsys.readouterr().err
    with pytest.raises(ValueError, match="timeout_s must be a positive number"):
        run_chapter(chapter, timeout_s=-5)


def test_out_that_is_a_file_or_unwritable_is_refused_before_running(chapter, tmp_path,
                                                                     capsys, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    assert main([str(chapter), "--out", str(a_file)]) == 2
    assert f"--out {a_file}: is a file, not a folder" in capsys.readouterr().err
    assert main([str(chapter), "--out", str(a_file / "sub" / "run")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert a_file.read_text() == "keep me"
    full = tmp_path / "full"
    (full / "x").mkdir(parents=True)
    assert main([str(chapter), "--out", str(full)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err

    def no_access(path, mode):  # as for a read-only folder (root ignores permission bits)
        return False

    monkeypatch.setattr(certlab.run.os, "access", no_access)
    monkeypatch.setattr(certlab.run, "run_chapter", lambda *a, **k: pytest.fail("ran"))
    assert main([str(chapter), "--out", str(tmp_path / "ro" / "run")]) == 2
    assert "cannot write in" in capsys.readouterr().err
    assert not (tmp_path / "ro").exists()


def test_schema_is_checked_before_running(tmp_path, monkeypatch):
    """A registered chapter's schema refuses bad values before anything executes."""
    from certlab.chapters import CHAPTERS

    chapter = next(c for c in CHAPTERS if c.stem == "12_smoothing_node_classification").path
    monkeypatch.setattr(certlab.run, "_execute", lambda *a, **k: pytest.fail("executed"))
    with pytest.raises(ParameterError, match=r"n0 \(500\) must not exceed n \(100\)"):
        check_parameters(chapter, {"n0": 500})
    with pytest.raises(ParameterError, match="'alpha' must be a probability|alpha must lie"):
        parse_parameters(chapter, [("alpha", "0")])
    assert main([str(chapter), "-p", "n0", "500", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()


SLOW_CHAPTER = textwrap.dedent('''\
    # %% tags=["parameters"]
    marker = ""
    seconds = 60

    # %%
    import os
    import time
    from pathlib import Path

    Path(marker).write_text(str(os.getpid()))
    time.sleep(seconds)
    print("finished")
    ''')


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_the_run_cleanly(tmp_path, signum, code):
    chapter = tmp_path / "slow.py"
    chapter.write_text(SLOW_CHAPTER)
    marker, out, tmp = tmp_path / "kernel.pid", tmp_path / "results" / "run", tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp),
           "PYTHONPATH": str(Path(certlab.run.__file__).parents[1])}
    proc = subprocess.Popen([sys.executable, "-m", "certlab.run", str(chapter), "-p", "marker",
                             str(marker), "--out", str(out)], env=env, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() or not marker.read_text():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the kernel never started"
            time.sleep(0.2)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "stopped, nothing written" in err and "Traceback" not in err
    assert not out.exists() and not out.parent.exists() or not any(out.parent.iterdir())
    assert list(tmp.iterdir()) == []  # no certlab-run-* folder left behind
    kernel = int(marker.read_text())
    deadline = time.monotonic() + 20
    while _alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(kernel), "the kernel outlived the run"


def test_provenance_names_the_code_at_the_start_of_the_run(chapter, tmp_path, monkeypatch):
    """A long run records the commit and library hash it started with, not those of a working
    tree edited while it ran."""
    states = iter([("commit-at-start", "hash-at-start")] + [("edited", "edited")] * 10)
    current = {"now": next(states)}

    def advance(*_args, **_kwargs):
        current["now"] = next(states)
        return real_execute(*_args, **_kwargs)

    real_execute = certlab.run._execute
    monkeypatch.setattr(certlab.run, "git_commit", lambda *a, **k: current["now"][0])
    monkeypatch.setattr(certlab.run, "lib_hash", lambda: current["now"][1])
    monkeypatch.setattr(certlab.run, "_execute", advance)
    run = certlab.run.run_chapter(chapter, {"n_samples": 2})
    assert run.provenance["commit"] == "commit-at-start"
    assert run.provenance["lib_hash"] == "hash-at-start"
    assert run.record["lib_hash"] == "hash-at-start"


def test_papermill_parameter_inference_warnings_are_not_shown(tmp_path, caplog):
    """Help comments with "=" make papermill's own parameter inference warn ("Unable to parse
    line", "Passed unknown parameter"); certlab validates parameters itself and drops both."""
    path = tmp_path / "nb" / "eq.py"
    path.parent.mkdir()
    path.write_text(CHAPTER.replace("rate = 0.5", "rate = 0.5  # p+ = p- = rate"))
    with caplog.at_level("WARNING"):
        run = certlab.run.run_chapter(path, {"rate": 2.0})
    assert run.record["values"]["product"] == 20.0
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "Unable to parse line" not in messages
    assert "Passed unknown parameter" not in messages
