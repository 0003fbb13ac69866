"""The data layer: registry, checksums, atomic downloads, clear errors, loaders."""

import io
import shutil
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

import certlab.data.files as files_mod
from certlab.data import (DATASETS, ChecksumError, DataUnavailableError, dataset_names,
                          fetch_dataset, get_dataset, load_graph, load_mnist, load_tu,
                          read_graph_npz, sha256_of)


def _shared_sums(data_root: Path) -> dict[str, str]:
    sums = {}
    for line in (data_root / "SHA256SUMS").read_text().splitlines():
        digest, rel = line.split()
        sums[rel] = digest
    return sums


def test_registry_matches_the_shared_checksums(data_root):
    sums = _shared_sums(data_root)
    registered = {f.relpath: f.sha256 for d in DATASETS.values() for f in d.files}
    for rel, shas in registered.items():
        assert sums[rel] in shas, rel
    data_files = {rel for rel in sums if not rel.endswith("README.txt")}
    assert data_files == set(registered)


def test_unknown_dataset_lists_valid_names():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'.*cora_ml.*mnist"):
        get_dataset("cifar10")
    assert get_dataset("mutag").name == "MUTAG"
    assert "cora_ml" in dataset_names()


def test_graph_loaders(data_root):
    expected = {"cora_ml": (2995, 2879, 7), "cora": (2708, 1433, 7),
                "citeseer": (3312, 3703, 6), "polblogs": (1490, None, 2)}
    for name, (n, d, c) in expected.items():
        g = load_graph(name)
        assert g.num_nodes == n and g.num_classes == c
        assert (g.attr is None) if d is None else (g.attr.shape == (n, d))
        assert g.labels.dtype == np.int64 and g.labels.min() == 0


def test_both_npz_key_styles(tmp_path, data_root):
    g = load_graph("cora_ml")
    adj, attr = g.adj.tocsr(), g.attr.tocsr()
    np.savez(tmp_path / "a.npz", adj_data=adj.data, adj_indices=adj.indices,
             adj_indptr=adj.indptr, adj_shape=adj.shape, attr_data=attr.data,
             attr_indices=attr.indices, attr_indptr=attr.indptr, attr_shape=attr.shape,
             labels=g.labels)
    np.savez(tmp_path / "b.npz", **{"adj_matrix.data": adj.data, "adj_matrix.indices": adj.indices,
             "adj_matrix.indptr": adj.indptr, "adj_matrix.shape": adj.shape,
             "attr_matrix.data": attr.data, "attr_matrix.indices": attr.indices,
             "attr_matrix.indptr": attr.indptr, "attr_matrix.shape": attr.shape,
             "labels": g.labels})
    a, b = read_graph_npz(tmp_path / "a.npz", "x"), read_graph_npz(tmp_path / "b.npz", "x")
    assert (a.adj != b.adj).nnz == 0 and (a.attr != g.attr).nnz == 0
    np.testing.assert_array_equal(b.labels, g.labels)


def test_mnist(data_root):
    x, y = load_mnist("test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8 and y.shape == (10000,)
    assert np.bincount(y).tolist()[:3] == [980, 1135, 1032]
    x, y = load_mnist("train")
    assert x.shape == (60000, 28, 28) and y[:5].tolist() == [5, 0, 4, 1, 9]
    with pytest.raises(ValueError, match="split"):
        load_mnist("validation")


@pytest.mark.parametrize("name, n_graphs, n_classes", [
    ("MUTAG", 188, 2), ("PROTEINS", 1113, 2), ("ENZYMES", 600, 6), ("NCI1", 4110, 2)])
def test_tu_datasets(data_root, name, n_graphs, n_classes):
    graphs = load_tu(name)
    assert len(graphs) == n_graphs
    assert len({int(g.y) for g in graphs}) == n_classes
    g = graphs[0]
    src, dst = g.edge_index
    pairs = set(zip(src.tolist(), dst.tolist()))
    assert all((j, i) in pairs for i, j in pairs)  # undirected
    assert int(g.edge_index.max()) < g.num_nodes and g.x.shape[0] == g.num_nodes


def _copy_dataset(data_root: Path, tmp_path: Path, rel: str) -> Path:
    target = tmp_path / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(data_root / rel, target)
    return target


def test_corrupt_file_is_never_used_or_overwritten(data_root, tmp_path, monkeypatch):
    target = _copy_dataset(data_root, tmp_path, "graphs/polblogs.npz")
    with open(target, "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    before = target.read_bytes()
    monkeypatch.setenv("CERTLAB_DATA", str(tmp_path))
    with pytest.raises(ChecksumError, match=r"polblogs.*corrupt.*CERTLAB_DATA"):
        load_graph("polblogs")
    assert target.read_bytes() == before


def test_missing_and_offline_gives_a_clear_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(files_mod.urllib.request, "urlopen", offline)
    monkeypatch.setenv("CERTLAB_DATA", str(tmp_path))
    with pytest.raises(DataUnavailableError) as err:
        load_graph("cora")
    message = str(err.value)
    for part in ("'cora'", str(tmp_path / "graphs" / "cora.npz"), "CERTLAB_DATA", "cora_ml",
                 "unreachable"):
        assert part in message
    assert not any(tmp_path.rglob("*"))  # nothing written


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_is_verified_and_atomic(data_root, tmp_path, monkeypatch):
    payload = (data_root / "graphs" / "polblogs.npz").read_bytes()
    seen = []

    def serve(url, timeout):
        seen.append(url)
        return _Response(payload)

    monkeypatch.setattr(files_mod.urllib.request, "urlopen", serve)
    monkeypatch.setenv("CERTLAB_DATA", str(tmp_path))
    g = load_graph("polblogs")
    assert g.num_nodes == 1490 and seen and seen[0].endswith("polblogs.npz")
    assert sha256_of(tmp_path / "graphs" / "polblogs.npz") == sha256_of(
        data_root / "graphs" / "polblogs.npz")
    assert [p.name for p in (tmp_path / "graphs").iterdir()] == ["polblogs.npz"]


def test_bad_download_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(files_mod.urllib.request, "urlopen",
                        lambda url, timeout: _Response(b"<html>not a dataset</html>"))
    monkeypatch.setenv("CERTLAB_DATA", str(tmp_path))
    with pytest.raises(ChecksumError, match="nothing was written"):
        load_graph("citeseer")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))


def test_tu_download_extracts_members_from_the_zip(data_root, tmp_path, monkeypatch):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for f in (data_root / "TU" / "MUTAG").iterdir():
            zf.write(f, f"MUTAG/{f.name}")
    monkeypatch.setattr(files_mod.urllib.request, "urlopen",
                        lambda url, timeout: _Response(archive.getvalue()))
    monkeypatch.setenv("CERTLAB_DATA", str(tmp_path))
    paths = fetch_dataset("MUTAG")
    assert len(paths) == 5 and all(p.is_file() for p in paths.values())
    assert len(load_tu("MUTAG")) == 188


# ------------------------------------------------------------------ issue 10: bad files
def _write_graph(path, adj_data=(1.0, 1.0), adj_indices=(1, 0), labels=(0, 1), **extra):
    arrays = dict(adj_data=np.asarray(adj_data), adj_indices=np.asarray(adj_indices),
                  adj_indptr=np.array([0, 1, 2]), adj_shape=np.array([2, 2]),
                  labels=np.asarray(labels))
    arrays.update(extra)
    np.savez(path, **arrays)
    return path


def test_read_graph_npz_accepts_a_valid_small_file(tmp_path):
    g = read_graph_npz(_write_graph(tmp_path / "ok.npz", labels=[3.0, 7.0]), "tiny")
    assert g.adj.toarray().tolist() == [[0, 1], [1, 0]] and g.labels.tolist() == [0, 1]


@pytest.mark.parametrize("content", [b"this is not a zip file at all", b"PK\x03\x04garbage", b""])
def test_read_graph_npz_garbage_gives_a_data_error_naming_the_file(tmp_path, content):
    from certlab.data import DataError

    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(DataError, match="garbage.npz.*npz"):
        read_graph_npz(path, "x")


def test_read_graph_npz_truncated_and_non_archive_files(tmp_path, data_root):
    from certlab.data import DataError

    full = (data_root / "graphs" / "polblogs.npz").read_bytes()
    for cut in (len(full) // 2, len(full) - 30, 40):
        path = tmp_path / f"cut{cut}.npz"
        path.write_bytes(full[:cut])
        with pytest.raises(DataError, match=f"cut{cut}.npz"):
            read_graph_npz(path, "x")
    np.save(tmp_path / "single.npy", np.arange(3))
    with pytest.raises(DataError, match="single.npy.*not an npz archive"):
        read_graph_npz(tmp_path / "single.npy", "x")
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickled.npy"):
        read_graph_npz(tmp_path / "pickled.npy", "x")


@pytest.mark.parametrize("kwargs, match", [
    ({"adj_indices": (5, 0)}, "adj matrix arrays are inconsistent"),  # column 5 in a 2x2 matrix
    ({"adj_indices": (-1, 0)}, "adj matrix arrays are inconsistent"),
    ({"adj_data": (np.nan, 1.0)}, "NaN or infinite"),
    ({"adj_data": (np.inf, 1.0)}, "NaN or infinite"),
    ({"labels": (0.5, 1.7)}, r"labels must be whole numbers.*0.5"),  # truncated to [0, 1] before
    ({"labels": (0.0, np.nan)}, "labels must be whole numbers"),
    ({"labels": np.array(["a", "b"])}, "labels must be integers"),
    ({"adj_indices": (1.0, 0.0)}, "adj_indices must hold integers"),
    ({"adj_shape": np.array([-2, 2])}, "adj_shape must be two non-negative"),
])
def test_read_graph_npz_refuses_invalid_contents(tmp_path, kwargs, match):
    from certlab.data import DataError

    path = _write_graph(tmp_path / "bad.npz", **kwargs)
    with pytest.raises(DataError, match=match) as err:
        read_graph_npz(path, "x")
    assert "bad.npz" in str(err.value)


def test_same_size_corruption_with_restored_mtime_is_a_checksum_error(data_root, tmp_path,
                                                                        monkeypatch):
    import os

    target = _copy_dataset(data_root, tmp_path, "graphs/polblogs.npz")
    monkeypatch.setenv("CERTLAB_DATA", str(tmp_path))
    assert load_graph("polblogs").num_nodes == 1490  # verified once (formerly cached)
    stat = target.stat()
    data = bytearray(target.read_bytes())
    data[200:203] = bytes(b ^ 0xFF for b in data[200:203])
    target.write_bytes(bytes(data))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert target.stat().st_size == stat.st_size
    assert target.stat().st_mtime_ns == stat.st_mtime_ns
    with pytest.raises(ChecksumError, match="polblogs.*corrupt"):
        load_graph("polblogs")
