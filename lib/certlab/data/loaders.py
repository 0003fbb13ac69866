"""Loaders that turn verified dataset files into arrays.

- :func:`load_graph`: citation / blog graphs (npz of scipy CSR arrays; both the
  ``adj_data``-style and the ``adj_matrix.data``-style key names are accepted).
- :func:`load_mnist`: MNIST from the original IDX files.
- :func:`load_tu`: TU graph-classification benchmarks as PyTorch Geometric ``Data`` lists.
"""

from __future__ import annotations

import gzip
import os
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .files import DataError, fetch_dataset
from .registry import get_dataset

__all__ = ["GraphData", "read_graph_npz", "load_graph", "load_mnist", "load_tu", "GRAPH_DATASETS", "TU_DATASETS"]

GRAPH_DATASETS = ("cora_ml", "cora", "citeseer", "polblogs")
TU_DATASETS = ("MUTAG", "PROTEINS", "ENZYMES", "NCI1")


@dataclass
class GraphData:
    """A node-classification graph.

    Attributes:
        name: dataset name.
        adj: adjacency, ``scipy.sparse.csr_matrix`` of shape (n, n), as stored (possibly
            directed, with self-loops; see :mod:`certlab.graphs.preprocess`).
        attr: node attributes, csr of shape (n, d), or ``None`` (Polblogs).
        labels: int64 array (n,) with classes 0..c-1.
        node_index: int64 array (n,), each node's index in the original file (preprocessing
            that drops nodes keeps this mapping).
    """

    name: str
    adj: sp.csr_matrix
    attr: sp.csr_matrix | None
    labels: np.ndarray
    node_index: np.ndarray

    @property
    def num_nodes(self) -> int:
        return self.adj.shape[0]

    @property
    def num_classes(self) -> int:
        return int(self.labels.max()) + 1

    def __repr__(self) -> str:
        d = "none" if self.attr is None else self.attr.shape[1]
        return (f"GraphData({self.name!r}, nodes={self.num_nodes}, edges(stored)={self.adj.nnz}, "
                f"attributes={d}, classes={self.num_classes})")


def _csr_from(z, prefix: str, path) -> sp.csr_matrix | None:
    styles = [(f"{prefix}_data", f"{prefix}_indices", f"{prefix}_indptr", f"{prefix}_shape"),
              (f"{prefix}_matrix.data", f"{prefix}_matrix.indices", f"{prefix}_matrix.indptr",
               f"{prefix}_matrix.shape")]
    for keys in styles:
        if all(k in z.files for k in keys):
            data, indices, indptr, shape = (z[k] for k in keys)
            for arr, key, kinds in ((data, keys[0], "biuf"), (indices, keys[1], "iu"),
                                    (indptr, keys[2], "iu"), (shape, keys[3], "iu")):
                if arr.dtype.kind not in kinds:
                    raise DataError(f"{path}: {key} must hold "
                                    f"{'numbers' if kinds == 'biuf' else 'integers'}, got dtype "
                                    f"{arr.dtype}")
            if shape.shape != (2,) or np.any(shape < 0):
                raise DataError(f"{path}: {keys[3]} must be two non-negative sizes, got "
                                f"{shape.tolist()}")
            if data.dtype.kind == "f" and not np.all(np.isfinite(data)):
                raise DataError(f"{path}: {prefix} matrix has NaN or infinite entries")
            try:
                mat = sp.csr_matrix((data, indices, indptr), shape=tuple(int(s) for s in shape))
                mat.check_format(full_check=True)  # index bounds and order of indptr
            except ValueError as exc:
                raise DataError(f"{path}: {prefix} matrix arrays are inconsistent ({exc})") from exc
            return mat
    return None


def _labels_from(z, path) -> np.ndarray:
    raw = np.asarray(z["labels"])
    if raw.dtype.kind not in "biuf":
        raise DataError(f"{path}: labels must be integers, got dtype {raw.dtype}")
    if raw.dtype.kind == "f" and not np.all(np.isfinite(raw) & (raw == np.round(raw))):
        bad = raw[~(np.isfinite(raw) & (raw == np.round(raw)))][:3].tolist()
        raise DataError(f"{path}: labels must be whole numbers (class ids), found {bad}; "
                        "they are not truncated")
    return raw.astype(np.int64)


def read_graph_npz(path: str | os.PathLike, name: str) -> GraphData:
    """Read a graph from an npz file of CSR arrays (either key style).

    Only numeric arrays are read (``allow_pickle=False``): the string arrays some copies
    carry (node and class names) are skipped. Labels are re-indexed to 0..c-1.

    Raises:
        DataError (naming the file): not a readable npz archive (garbage, truncated), missing
            adjacency or labels, CSR arrays out of bounds or inconsistent, NaN/inf matrix
            entries, labels that are not whole numbers, or shapes that disagree.
    """
    unreadable = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)
    try:
        z = np.load(path, allow_pickle=False)
    except unreadable as exc:
        raise DataError(f"{path}: not a readable npz archive of graph arrays (garbage or "
                        f"truncated file?): {type(exc).__name__}: {exc}") from exc
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single NumPy array, not an npz archive of graph arrays")
    with z:
        try:
            adj = _csr_from(z, "adj", path)
            attr = _csr_from(z, "attr", path)
            if adj is None or "labels" not in z.files:
                raise DataError(f"{path}: no adjacency matrix or labels (keys: "
                                f"{sorted(z.files)})")
            labels = _labels_from(z, path)
        except unreadable as exc:
            raise DataError(f"{path}: a member of the npz archive cannot be read (truncated "
                            f"file?): {type(exc).__name__}: {exc}") from exc
    if adj.shape[0] != adj.shape[1] or labels.shape != (adj.shape[0],) or (
            attr is not None and attr.shape[0] != adj.shape[0]):
        raise DataError(f"{path}: shapes disagree (adj {adj.shape}, labels {labels.shape}, "
                        f"attributes {None if attr is None else attr.shape})")
    _, labels = np.unique(labels, return_inverse=True)
    return GraphData(name, adj.tocsr(), None if attr is None else attr.tocsr(),
                     labels.astype(np.int64), np.arange(adj.shape[0], dtype=np.int64))


def load_graph(name: str, root: str | os.PathLike | None = None) -> GraphData:
    """Load a citation/blog graph (``"cora_ml"``, ``"cora"``, ``"citeseer"``, ``"polblogs"``)
    after verifying its checksum (downloading it first if it is missing).
    """
    dataset = get_dataset(name)
    if dataset.kind != "graph":
        raise ValueError(f"{name!r} is not a graph dataset; graph datasets: "
                         f"{', '.join(GRAPH_DATASETS)}")
    (path,) = fetch_dataset(dataset.name, root).values()
    return read_graph_npz(path, dataset.name)


def _read_idx(path, expected_magic: int) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{path}: not an IDX file of the expected kind (magic {magic})")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({data.size} values for shape {dims})")
    return data.reshape(dims)


def load_mnist(split: str = "train", root: str | os.PathLike | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """MNIST images and labels.

    Args:
        split: ``"train"`` (60000 images) or ``"test"`` (10000).

    Returns:
        ``(images, labels)``: uint8 array (N, 28, 28) with values 0..255 and int64 array (N,).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    files = fetch_dataset("mnist", root)
    prefix = "train" if split == "train" else "t10k"
    images = _read_idx(files[f"MNIST/raw/{prefix}-images-idx3-ubyte.gz"], 0x00000803)
    labels = _read_idx(files[f"MNIST/raw/{prefix}-labels-idx1-ubyte.gz"], 0x00000801)
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels")
    return images.copy(), labels.astype(np.int64)


def load_tu(name: str, root: str | os.PathLike | None = None) -> list:
    """A TU graph-classification dataset as a list of ``torch_geometric.data.Data``.

    Each graph has ``x`` (float32: one-hot node labels, followed by the continuous node
    attributes where the dataset has them), an undirected ``edge_index`` (both directions,
    no duplicates) and ``y`` (graph label mapped to 0..c-1, shape (1,)).
    """
    import torch
    from torch_geometric.data import Data
    from torch_geometric.utils import coalesce, to_undirected

    dataset = get_dataset(name)
    if dataset.kind != "tu":
        raise ValueError(f"{name!r} is not a TU dataset; TU datasets: {', '.join(TU_DATASETS)}")
    files = fetch_dataset(dataset.name, root)
    by_suffix = {p.split(f"{dataset.name}_", 1)[1]: path for p, path in files.items()}

    def read(suffix: str, dtype) -> np.ndarray:
        return np.loadtxt(by_suffix[suffix], delimiter=",", dtype=dtype, ndmin=2)

    edges = read("A.txt", np.int64) - 1
    graph_of = read("graph_indicator.txt", np.int64)[:, 0] - 1
    _, graph_labels = np.unique(read("graph_labels.txt", np.int64)[:, 0], return_inverse=True)
    _, node_labels = np.unique(read("node_labels.txt", np.int64)[:, 0], return_inverse=True)
    features = np.eye(node_labels.max() + 1, dtype=np.float32)[node_labels]
    if "node_attributes.txt" in by_suffix:
        features = np.hstack([features, read("node_attributes.txt", np.float32)])
    n_nodes, n_graphs = graph_of.shape[0], graph_labels.shape[0]
    if features.shape[0] != n_nodes or graph_of.max() + 1 != n_graphs:
        raise DataError(f"TU {dataset.name}: files disagree on the number of nodes or graphs")
    starts = np.searchsorted(graph_of, np.arange(n_graphs + 1))
    edge_graph = graph_of[edges[:, 0]]
    if np.any(edge_graph != graph_of[edges[:, 1]]):
        raise DataError(f"TU {dataset.name}: an edge joins two different graphs")
    order = np.argsort(edge_graph, kind="stable")
    edges, edge_graph = edges[order], edge_graph[order]
    edge_starts = np.searchsorted(edge_graph, np.arange(n_graphs + 1))
    graphs = []
    for g in range(n_graphs):
        lo, hi = starts[g], starts[g + 1]
        e = torch.from_numpy(edges[edge_starts[g]:edge_starts[g + 1]].T - lo)
        edge_index = coalesce(to_undirected(e, num_nodes=hi - lo), num_nodes=hi - lo)
        graphs.append(Data(x=torch.from_numpy(features[lo:hi]), edge_index=edge_index,
                           y=torch.tensor([graph_labels[g]], dtype=torch.long),
                           num_nodes=int(hi - lo)))
    return graphs
