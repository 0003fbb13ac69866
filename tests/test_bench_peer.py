"""The complete-verifier benchmark's comparison with alpha,beta-CROWN's stored verdicts.

The peer runs apart (``benchmarks/peer/abcrown_verdicts.py``, its own environment); these
tests check that its verdicts are used only for the model files they were produced on, that
contradictions with them are counted, and that the stored records never contradict each
other (a "verified" of one verifier where the other found a counterexample).
"""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from certlab.data.files import sha256_of

ROOT = Path(__file__).resolve().parents[1]
PEER_DIR = ROOT / "benchmarks" / "results" / "peer"


def _load_bench():
    spec = importlib.util.spec_from_file_location(
        "bench_complete_verifier", ROOT / "benchmarks" / "bench_complete_verifier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


def _peer_record(tmp_path, model_sha, timeout=20.0, statuses=("verified", "falsified")):
    record = {"timeout_s": timeout, "images": len(statuses), "settings": {
        "mlp_eps0.03": {"model_sha256": model_sha, "statuses": list(statuses),
                        "times_s": [1.0] * len(statuses)}}}
    path = tmp_path / "abcrown.json"
    path.write_text(json.dumps(record))
    return path


def test_peer_verdicts_only_for_the_same_model_file_images_and_timeout(tmp_path):
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2)),
               tmp_path / "mlp.pt")
    good = _peer_record(tmp_path, sha256_of(tmp_path / "mlp.pt"))
    assert bench.peer_verdicts(good, tmp_path, "mlp_eps0.03", 2, 20.0)["statuses"] == [
        "verified", "falsified"]
    assert bench.peer_verdicts(good, tmp_path, "mlp_eps0.03", 2, 10.0) is None  # timeout
    assert bench.peer_verdicts(good, tmp_path, "mlp_eps0.03", 3, 20.0) is None  # images
    assert bench.peer_verdicts(good, tmp_path, "mlp_eps0.05", 2, 20.0) is None  # setting
    stale = _peer_record(tmp_path, "0" * 64)
    assert bench.peer_verdicts(stale, tmp_path, "mlp_eps0.03", 2, 20.0) is None
    assert bench.peer_verdicts(tmp_path / "absent.json", tmp_path, "mlp_eps0.03", 2,
                               20.0) is None


def test_summary_counts_contradictions_with_the_peer():
    ours = [{"status": "verified", "time_s": 1.0, "domains": 0},
            {"status": "timeout", "time_s": 20.0, "domains": 64}]
    peer = [{"status": "falsified", "time_s": 0.1, "domains": None},
            {"status": "timeout", "time_s": 20.0, "domains": None}]
    summary = bench.summarise({"current": ours, bench.PEER: peer})
    assert summary["contradictions"] == 1
    assert summary["variants"][bench.PEER]["median_domains_per_s"] is None
    peer[0]["status"] = "verified"
    assert bench.summarise({"current": ours, bench.PEER: peer})["contradictions"] == 0


def test_load_or_train_refuses_a_changed_model_file(tmp_path):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    for name in ("mlp", "cnn"):
        torch.save(model, tmp_path / f"{name}.pt")
    torch.save({"x": torch.zeros(2, 1, 2, 2), "y": torch.zeros(2, dtype=torch.long)},
               tmp_path / "inputs.pt")
    files = ["mlp.pt", "cnn.pt", "inputs.pt"]
    settings = {"train_images": 1, "epochs": 1, "images": 2, "seed": 0}
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"settings": settings, "sha256": {f: sha256_of(tmp_path / f) for f in files}}))
    models, x, y = bench.load_or_train(tmp_path, 1, 1, 2, 0)
    assert set(models) == {"mlp", "cnn"} and x.shape == (2, 1, 2, 2)
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3)),
               tmp_path / "cnn.pt")
    with pytest.raises(ValueError, match="SHA-256"):
        bench.load_or_train(tmp_path, 1, 1, 2, 0)


@pytest.mark.parametrize("record", sorted(PEER_DIR.glob("abcrown*.json")), ids=lambda p: p.stem)
def test_stored_peer_verdicts_match_the_stored_models_and_never_contradict_ours(record):
    peer = json.loads(record.read_text())
    ours = json.loads((ROOT / "benchmarks" / "results" / "complete_verifier.json").read_text())
    manifest = json.loads((PEER_DIR / "manifest.json").read_text())
    assert peer["provenance"]["peer"]["name"] == "alpha-beta-CROWN"
    for key, setting in peer["settings"].items():
        model_file = f"{key.split('_')[0]}.pt"
        assert setting["model_sha256"] == manifest["sha256"][model_file] == sha256_of(
            PEER_DIR / model_file)
        for variant, result in ours["results"]["settings"][key]["variants"].items():
            for i, (a, b) in enumerate(zip(result["statuses"], setting["statuses"])):
                assert {a, b} != {"verified", "falsified"}, (key, variant, i, a, b)


def test_the_peer_runs_the_book_quotes_are_stored():
    """Chapter 41 and the benchmark quote these runs; deleting one must not go unnoticed."""
    stored = {p.name for p in PEER_DIR.glob("abcrown*.json")}
    assert {"abcrown.json", "abcrown_bab.json"} <= stored, stored
