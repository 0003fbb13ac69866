"""certlab.sweep: specs, planning, resume, failures and a real 2-worker LocalCluster."""

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
from certlab.parameters import ParameterError
from certlab.provenance import lib_hash
from certlab.sweep import (SpecError, is_done, load_spec, main, plan, run_sweep,
                           summary_path)

TOY = textwrap.dedent('''\
    # %% tags=["parameters"]
    x = 1
    scale = 1.0
    label = "a"

    # %%
    if x == 3:
        raise RuntimeError("point three fails on purpose")
    from certlab.records import save_record

    save_record({"square": x * x * scale, "label": label})
    print("done", x)
    ''')


@pytest.fixture
def toy(tmp_path):
    path = tmp_path / "nb" / "toy.py"
    path.parent.mkdir()
    path.write_text(TOY)
    return path


def _spec(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_spec_and_plan(toy, tmp_path):
    spec = load_spec(_spec(tmp_path, f"""\
        chapter: {toy}
        parameters: {{scale: 2}}
        grid:
          x: [1, 2]
          label: [a, "b c"]
        """))
    points = plan(spec)
    assert len(points) == 4 and len({p.id for p in points}) == 4
    assert points[0].overrides == {"scale": 2.0, "x": 1, "label": "a"}
    assert isinstance(points[0].overrides["scale"], float)  # typed like certlab.run
    assert points[0].parameters == {"x": 1, "scale": 2.0, "label": "a"}
    assert points[0].id.startswith("x-1_label-a_") and "/" not in points[3].id
    assert [p.id for p in plan(spec)] == [p.id for p in points]  # stable ids


@pytest.mark.parametrize("text, message", [
    ("chapter: {toy}\nfoo: 1\n", "unknown key.*foo"),
    ("parameters: {{}}\n", "'chapter' must name the chapter file"),
    ("chapter: nowhere/nothing.py\n", "no such py:percent file"),
    ("chapter: {toy}\ngrid: {{x: 3}}\n", "grid 'x' must be a non-empty list"),
    ("chapter: {toy}\ngrid: {{x: []}}\n", "grid 'x' must be a non-empty list"),
    ("chapter: {toy}\nparameters: {{x: 1}}\ngrid: {{x: [2]}}\n", "'x' in both"),
    ("chapter: {toy}\ntimeout: -5\n", "'timeout' must be a positive number"),
    ("- just\n- a list\n", "a spec is a YAML mapping"),
    ("chapter: [unclosed\n", "not valid YAML"),
])
def test_bad_specs_are_refused(toy, tmp_path, text, message):
    with pytest.raises(SpecError, match=message):
        load_spec(_spec(tmp_path, text.format(toy=toy)))


def test_bad_grid_values_are_refused_before_anything_runs(toy, tmp_path, capsys):
    spec = _spec(tmp_path, f"chapter: {toy}\ngrid: {{x: [1, 2.5]}}\n")
    with pytest.raises(ParameterError, match=r"at x=2.5: parameter 'x' expects a int"):
        plan(load_spec(spec))
    out = tmp_path / "out"
    assert main([str(spec), "--out", str(out), "--no-progress"]) == 2
    assert "at x=2.5" in capsys.readouterr().err and not out.exists()
    # the chapter's schema too (chapter 12: n0 <= n), with the point named
    spec12 = _spec(tmp_path, """\
        chapter: notebooks/12_smoothing_node_classification.py
        grid: {n0: [10, 500]}
        """, "s12.yaml")
    with pytest.raises(ParameterError, match=r"at n0=500: .*n0 \(500\) must not exceed n"):
        plan(load_spec(spec12))


def test_cli_argument_errors(toy, tmp_path, capsys):
    spec = _spec(tmp_path, f"chapter: {toy}\n")
    for bad in (["--workers", "0"], ["--workers", "2", "--scheduler", "tcp://x:1"]):
        with pytest.raises(SystemExit) as exc:
            main([str(spec), *bad])
        assert exc.value.code == 2
    a_file = tmp_path / "file"
    a_file.write_text("")
    assert main([str(spec), "--out", str(a_file), "--no-progress"]) == 2
    assert "is a file" in capsys.readouterr().err
    bad_grid = load_spec(_spec(tmp_path, f"chapter: {toy}\ngrid: {{x: [2.5]}}\n", "bad.yaml"))
    for kwargs, message in (({"workers": 0}, "workers must be a positive integer"),
                            ({"keep_stored": "yes"}, "keep_stored must be True or False")):
        # argument errors come first, before the grid is checked (bad here) or anything runs
        with pytest.raises(ValueError, match=message):
            run_sweep(bad_grid, tmp_path / "never", progress=False, **kwargs)
    assert not (tmp_path / "never").exists()


def test_sweep_on_a_local_cluster_with_a_failing_point_and_resume(toy, tmp_path, capsys):
    spec = _spec(tmp_path, f"chapter: {toy}\nparameters: {{scale: 0.5}}\n"
                           f"grid: {{x: [1, 2, 3]}}\n")
    out = tmp_path / "out"
    assert main([str(spec), "--workers", "2", "--out", str(out), "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "2 done, 0 skipped (already there), 1 failed" in captured.out
    points = {p.overrides["x"]: p for p in plan(load_spec(spec))}
    for x in (1, 2):
        folder = out / points[x].id
        assert sorted(f.name for f in folder.iterdir()) == ["provenance.json", "record.json",
                                                            "toy.ipynb"]
        record = json.loads((folder / "record.json").read_text())
        assert record["values"] == {"square": x * x * 0.5, "label": "a"}
        assert record["parameters"] == {"x": x, "scale": 0.5, "label": "a"}
        assert record["lib_hash"] == lib_hash()
        prov = json.loads((folder / "provenance.json").read_text())
        assert points[x].id in prov["command"] and prov["wall_time_s"] > 0
        assert f"done {x}" in (folder / "toy.ipynb").read_text()
    assert not (out / points[3].id).exists()
    error = (out / "_failed" / f"{points[3].id}.txt").read_text()
    assert "point three fails on purpose" in error and "RuntimeError" in error
    assert "point three fails on purpose" in captured.err
    summary = json.loads(summary_path(out, load_spec(spec)).read_text())
    assert sorted(summary["done"]) == sorted([points[1].id, points[2].id])
    assert list(summary["failed"]) == [points[3].id]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging debris

    # resume: the two finished points are skipped (untouched), the failed one is retried
    stamp = (out / points[1].id / "record.json").stat().st_mtime_ns
    assert main([str(spec), "--workers", "2", "--out", str(out), "--no-progress"]) == 1
    assert "0 done, 2 skipped (already there), 1 failed" in capsys.readouterr().out
    assert (out / points[1].id / "record.json").stat().st_mtime_ns == stamp


def test_resume_needs_same_parameters_and_library(toy, tmp_path):
    spec = load_spec(_spec(tmp_path, f"chapter: {toy}\ngrid: {{x: [1]}}\n"))
    (point,) = plan(spec)
    folder = tmp_path / "out" / point.id
    folder.mkdir(parents=True)
    record = {"chapter": str(toy), "parameters": point.parameters, "lib_hash": "abc",
              "values": {}}
    (folder / "record.json").write_text(json.dumps(record))
    assert is_done(tmp_path / "out", point, "abc")
    assert not is_done(tmp_path / "out", point, lib_hash())  # the library changed
    record["parameters"] = {**point.parameters, "scale": 2.0}
    (folder / "record.json").write_text(json.dumps(record))
    assert not is_done(tmp_path / "out", point, "abc")  # other parameters
    (folder / "record.json").write_text("{not json")
    assert not is_done(tmp_path / "out", point, "abc")


def test_a_record_older_than_a_parameter_still_counts_as_done(tmp_path):
    """Chapter 42 gained ``verify_start`` after its CPU-scale run was stored: the stored
    record (without it) still matches the spec's point, which uses the default 0; a record
    of another slice does not."""
    root = Path(__file__).resolve().parents[1]
    out = root / "results" / "paper" / "42_linearity_grafting"
    (point,) = plan(load_spec(root / "sweeps" / "42_cpu_scale.yaml"))
    stored = json.loads((out / point.id / "record.json").read_text())
    assert "verify_start" not in stored["parameters"] and point.parameters["verify_start"] == 0
    assert is_done(out, point, None)
    stored["parameters"]["verify_start"] = 25
    (tmp_path / point.id).mkdir()
    (tmp_path / point.id / "record.json").write_text(json.dumps(stored))
    assert not is_done(tmp_path, point, None)


def test_keep_stored_skips_a_point_an_older_library_wrote(toy, tmp_path, capsys):
    """--keep-stored: same parameters suffice (no cluster starts when nothing is left);
    other parameters still run."""
    spec_path = _spec(tmp_path, f"chapter: {toy}\ngrid: {{x: [1]}}\n")
    (point,) = plan(load_spec(spec_path))
    out = tmp_path / "out"
    (out / point.id).mkdir(parents=True)
    record = {"chapter": str(toy), "parameters": point.parameters, "lib_hash": "older",
              "values": {"square": 1}}
    (out / point.id / "record.json").write_text(json.dumps(record))
    assert is_done(out, point, None) and not is_done(out, point, lib_hash())
    assert main([str(spec_path), "--out", str(out), "--keep-stored", "--no-progress"]) == 0
    assert "0 done, 1 skipped (already there), 0 failed" in capsys.readouterr().out
    summary = json.loads(summary_path(out, load_spec(spec_path)).read_text())
    assert summary["skipped"] == [point.id] and summary["keep_stored"] is True
    assert json.loads((out / point.id / "record.json").read_text())["lib_hash"] == "older"
    record["parameters"] = {**point.parameters, "x": 2}
    (out / point.id / "record.json").write_text(json.dumps(record))
    assert not is_done(out, point, None)


def test_specs_sharing_an_output_folder_keep_their_own_summaries(toy, tmp_path):
    """Two specs (pieces of one chapter) written into one folder: each keeps its summary."""
    first = _spec(tmp_path, f"chapter: {toy}\ngrid: {{x: [1]}}\n", name="piece_a.yaml")
    second = _spec(tmp_path, f"chapter: {toy}\ngrid: {{x: [1]}}\n", name="piece_b.yaml")
    out = tmp_path / "out"
    (point,) = plan(load_spec(first))
    (out / point.id).mkdir(parents=True)  # stored: both specs skip it, no cluster starts
    (out / point.id / "record.json").write_text(json.dumps(
        {"chapter": str(toy), "parameters": point.parameters, "lib_hash": lib_hash(),
         "values": {}}))
    for spec in (first, second):
        assert main([str(spec), "--out", str(out), "--no-progress"]) == 0
    assert summary_path(out, load_spec(first)).name == "sweep-piece_a.json"
    summaries = {path.name: json.loads(path.read_text()) for path in out.glob("sweep-*.json")}
    assert sorted(summaries) == ["sweep-piece_a.json", "sweep-piece_b.json"]
    assert summaries["sweep-piece_a.json"]["spec"].endswith("piece_a.yaml")
    assert summaries["sweep-piece_b.json"]["spec"].endswith("piece_b.yaml")
    assert not (out / "sweep.json").exists()


SLOW = textwrap.dedent('''\
    # %% tags=["parameters"]
    x = 1
    pid_dir = "."

    # %%
    import os
    import time
    from pathlib import Path

    from certlab.records import save_record

    if x == 2:
        Path(pid_dir, "kernel.pid").write_text(str(os.getpid()))
        time.sleep(600)
    save_record({"x": x})
    ''')


def _wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_ctrl_c_cancels_cleanly_and_keeps_finished_points(tmp_path):
    """Ctrl-C during a sweep: exit status 130, the finished point stays, the running one
    leaves nothing (no folder, no staging files), its kernel is stopped, and its summary says
    "interrupted"; running the spec again only redoes the interrupted point."""
    chapter = tmp_path / "nb" / "slow.py"
    chapter.parent.mkdir()
    chapter.write_text(SLOW)
    spec = _spec(tmp_path, f"chapter: {chapter}\nparameters: {{pid_dir: '{tmp_path}'}}\n"
                           f"grid: {{x: [1, 2]}}\n")
    out = tmp_path / "out"
    points = {p.overrides["x"]: p for p in plan(load_spec(spec))}
    proc = subprocess.Popen([sys.executable, "-m", "certlab.sweep", str(spec), "--workers",
                             "2", "--out", str(out), "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = _wait_for(lambda: (out / points[1].id / "record.json").is_file()
                            and (tmp_path / "kernel.pid").is_file(), 240)
        assert started, "the sweep did not reach the slow point"
        kernel = int((tmp_path / "kernel.pid").read_text())
        assert _alive(kernel)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert _wait_for(lambda: not _alive(kernel), 30), "the interrupted kernel still runs"
    assert (out / points[1].id / "record.json").is_file()
    assert not (out / points[2].id).exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging debris
    assert json.loads(summary_path(out, load_spec(spec)).read_text())["interrupted"] is True
    assert "Traceback" not in output, output
