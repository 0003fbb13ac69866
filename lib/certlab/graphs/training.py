"""Training with noise augmentation for smoothed GNNs (Bojchevski et al., 2020, Section 6).

The base classifier ``f`` of a smoothed classifier only ever sees noisy inputs ``phi(x)``, so
it is trained on them: every epoch draws a fresh noisy graph / attribute matrix from the same
randomization used at certification time (:mod:`certlab.smoothing.sampling`). Reference
settings: Adam, learning rate 1e-3, weight decay 1e-3, up to 3000 epochs, early stopping with
patience 50. Early stopping watches the validation loss *under the same noise* (the quantity
the smoothed classifier depends on); the weights of the best epoch are restored.

All randomness (initialisation via :func:`certlab.utils.seed_everything`, dropout, noise via a
seeded ``torch.Generator``) is seeded: two runs with the same seed give identical models.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from certlab.smoothing.sampling import (
    _check_edge_index,
    _check_finite_attributes,
    SparseNoise,
    _check_noise,
    attributes_to_torch,
    binary_matrix_index,
    pairs_to_edge_index,
    sample_attribute_noise,
    sample_graph_noise,
    undirected_pairs,
)
from certlab.utils import check_nonnegative_int, resolve_device, seed_everything

__all__ = [
    "TrainingResult",
    "train_node_classifier",
    "evaluate_node_classifier",
    "predict_nodes",
    "train_graph_classifier",
    "evaluate_graph_classifier",
]


@dataclass
class TrainingResult:
    """Outcome of a training run (the model itself holds the restored best weights).

    Attributes:
        best_epoch: epoch (0-based) with the lowest validation loss.
        best_val_loss: that loss (under noise when noise was given).
        best_val_accuracy: validation accuracy at that epoch (under the same noise).
        epochs_run: epochs trained before stopping.
        history: per-epoch ``train_loss``, ``val_loss`` and ``val_accuracy`` lists.
    """

    best_epoch: int
    best_val_loss: float
    best_val_accuracy: float
    epochs_run: int
    history: dict[str, list[float]] = field(default_factory=dict)


class _EarlyStopping:
    """Early stopping on the validation loss, shared by node and graph training.

    Records every epoch's losses, keeps the weights of the epoch with the lowest validation
    loss, signals a stop after ``patience`` epochs without improvement, and restores the best
    weights at the end.
    """

    def __init__(self, model: nn.Module, patience: int):
        self.model, self.patience = model, patience
        self.history: dict[str, list[float]] = {"train_loss": [], "val_loss": [],
                                                "val_accuracy": []}
        self.best = (float("inf"), 0.0, -1)  # (val_loss, val_accuracy, epoch)
        self.best_state = copy.deepcopy(model.state_dict())
        self.epochs_run = 0

    def update(self, epoch: int, train_loss: float, val_loss: float, val_accuracy: float) -> bool:
        """Record one epoch; return True when training should stop."""
        self.epochs_run = epoch + 1
        self.history["train_loss"].append(train_loss)
        self.history["val_loss"].append(val_loss)
        self.history["val_accuracy"].append(val_accuracy)
        if val_loss < self.best[0]:
            self.best = (val_loss, val_accuracy, epoch)
            self.best_state = copy.deepcopy(self.model.state_dict())
            return False
        return epoch - self.best[2] >= self.patience

    def finish(self) -> "TrainingResult":
        """Restore the best weights (eval mode) and summarise the run."""
        self.model.load_state_dict(self.best_state)
        self.model.eval()
        return TrainingResult(best_epoch=self.best[2], best_val_loss=self.best[0],
                              best_val_accuracy=self.best[1], epochs_run=self.epochs_run,
                              history=self.history)


def _positive(value: Any, name: str) -> int:
    value = check_nonnegative_int(value, name)
    if value == 0:
        raise ValueError(f"{name} must be positive, got 0")
    return value


def _check_rate(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    return float(value)


def _index(idx: Any, n: int, name: str) -> torch.Tensor:
    arr = np.asarray(idx)
    if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be a non-empty 1-d integer array")
    if arr.min() < 0 or arr.max() >= n:
        raise ValueError(f"{name} has indices outside [0, {n})")
    return torch.as_tensor(arr.astype(np.int64))


def _edge_index(edge_index: Any, num_nodes: int) -> torch.Tensor:
    if sp.issparse(edge_index):
        return pairs_to_edge_index(undirected_pairs(edge_index, num_nodes), num_nodes)
    return _check_edge_index(edge_index, num_nodes, "edge_index")


class _NodeInputs:
    """Clean or freshly perturbed ``(x, edge_index)`` of one graph (copies = 1)."""

    def __init__(self, attr: Any, edge_index: Any, attr_noise: SparseNoise | None,
                 graph_noise: SparseNoise | None, device: torch.device, seed: int) -> None:
        self.attr_noise, self.graph_noise = attr_noise, graph_noise
        if attr_noise is not None:
            self.attr_index = binary_matrix_index(attr, "attr")
            self.num_nodes = self.attr_index.n_rows
        else:
            self.x = attributes_to_torch(attr, device)
            self.num_nodes = int(self.x.shape[0])
        self.edge_index = _edge_index(edge_index, self.num_nodes).to(device)
        self.pairs = undirected_pairs(self.edge_index.cpu(), self.num_nodes) \
            if graph_noise is not None else None
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def noisy(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.attr_noise is None:
            x = self.x
        else:
            x = sample_attribute_noise(self.attr_index, self.attr_noise.p_plus,
                                       self.attr_noise.p_minus, generator=self.generator)
        if self.graph_noise is None:
            ei = self.edge_index
        else:
            ei = sample_graph_noise(self.pairs, self.num_nodes, self.graph_noise.p_plus,
                                    self.graph_noise.p_minus, generator=self.generator)
        return x, ei


def train_node_classifier(model: nn.Module, attr: Any, edge_index: Any, labels: Any,
                          idx_train: Any, idx_val: Any, *,
                          attr_noise: SparseNoise | tuple[float, float] | None = None,
                          graph_noise: SparseNoise | tuple[float, float] | None = None,
                          lr: float = 1e-3, weight_decay: float = 1e-3,
                          max_epochs: int = 3000, patience: int = 50,
                          device: Any = "auto", seed: int = 0,
                          progress: bool = False) -> TrainingResult:
    """Train a node classifier with noise augmentation and early stopping (in place).

    Args:
        model: ``model(x, edge_index) -> (n, C)`` logits (e.g. :class:`certlab.graphs.models.GCN`).
        attr: ``(n, d)`` attributes (scipy sparse, torch or numpy); binary if ``attr_noise``.
        edge_index: undirected ``(2, E)`` (both directions) or a scipy adjacency ``(n, n)``.
        labels: ``(n,)`` int class labels.
        idx_train, idx_val: node indices of the training / validation sets.
        attr_noise, graph_noise: randomization applied afresh every epoch (None: clean).
        lr, weight_decay: Adam parameters; max_epochs, patience: early stopping.
        device, seed: where to train and the seed of initialisation, dropout and noise.

    Returns:
        :class:`TrainingResult`; ``model`` holds the weights of the best validation epoch.
    """
    attr_noise = _check_noise(attr_noise, "attr_noise")
    graph_noise = _check_noise(graph_noise, "graph_noise")
    lr, weight_decay = _check_rate(lr, "lr"), _check_rate(weight_decay, "weight_decay")
    max_epochs, patience = _positive(max_epochs, "max_epochs"), _positive(patience, "patience")
    seed = check_nonnegative_int(seed, "seed")
    dev = resolve_device(device)
    seed_everything(seed)
    inputs = _NodeInputs(attr, edge_index, attr_noise, graph_noise, dev, seed)
    y = torch.as_tensor(np.asarray(labels)).long().to(dev)
    if y.shape != (inputs.num_nodes,):
        raise ValueError(f"labels must have shape ({inputs.num_nodes},), got {tuple(y.shape)}")
    train_idx = _index(idx_train, inputs.num_nodes, "idx_train").to(dev)
    val_idx = _index(idx_val, inputs.num_nodes, "idx_val").to(dev)
    model.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    stopper = _EarlyStopping(model, patience)
    for epoch in tqdm(range(max_epochs), desc="training", disable=not progress, leave=False):
        x, ei = inputs.noisy()
        model.train()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x, ei)[train_idx], y[train_idx])
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x, ei)[val_idx]
            val_loss = float(F.cross_entropy(logits, y[val_idx]))
            val_acc = float((logits.argmax(1) == y[val_idx]).float().mean())
        if stopper.update(epoch, float(loss.detach()), val_loss, val_acc):
            break
    return stopper.finish()


@torch.no_grad()
def predict_nodes(model: nn.Module, attr: Any, edge_index: Any, *, device: Any = "auto"
                  ) -> np.ndarray:
    """Clean predictions ``(n,)`` of a node classifier (eval mode)."""
    dev = resolve_device(device)
    x = attributes_to_torch(attr, dev)
    _check_finite_attributes(x, "attr")
    ei = _edge_index(edge_index, int(x.shape[0])).to(dev)
    model.to(dev).eval()
    logits = model(x, ei)
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("the model returned non-finite logits (NaN or inf): no prediction")
    return logits.argmax(1).cpu().numpy()


def evaluate_node_classifier(model: nn.Module, attr: Any, edge_index: Any, labels: Any,
                             idx: Any = None, *, device: Any = "auto") -> float:
    """Clean accuracy of a node classifier on the nodes ``idx`` (all nodes when None)."""
    pred = predict_nodes(model, attr, edge_index, device=device)
    labels = np.asarray(labels)
    if labels.shape != pred.shape:
        raise ValueError(f"labels must have shape {pred.shape}, got {labels.shape}")
    sel = np.arange(pred.size) if idx is None else _index(idx, pred.size, "idx").numpy()
    return float((pred[sel] == labels[sel]).mean())


# ---------------------------------------------------------------------------------------------
# graph classification
# ---------------------------------------------------------------------------------------------
class _GraphInputs:
    def __init__(self, graphs: Sequence[Any], attr_noise: SparseNoise | None,
                 graph_noise: SparseNoise | None, device: torch.device, seed: int) -> None:
        if len(graphs) == 0:
            raise ValueError("graphs must not be empty")
        self.attr_noise, self.graph_noise, self.device = attr_noise, graph_noise, device
        self.items = []
        for i, g in enumerate(graphs):
            x = torch.as_tensor(g.x).float()
            _check_finite_attributes(x, f"graphs[{i}].x")
            n = int(x.shape[0])
            ei = _check_edge_index(g.edge_index, n, f"graphs[{i}].edge_index")
            y = int(torch.as_tensor(g.y).reshape(-1)[0])
            self.items.append({
                "n": n, "x": x.to(device), "ei": ei.to(device), "y": y,
                "x_index": binary_matrix_index(x, "graph.x") if attr_noise else None,
                "pairs": undirected_pairs(ei, n) if graph_noise else None})
        if len({int(it["x"].shape[1]) for it in self.items}) != 1:
            raise ValueError("all graphs must have the same number of node features "
                             "(x.shape[1])")
        self.generator = torch.Generator(device=device).manual_seed(seed)

    def batch(self, ids: Sequence[int], noisy: bool):
        xs, eis, batch, ys, offset = [], [], [], [], 0
        for k, i in enumerate(ids):
            it = self.items[i]
            x, ei = it["x"], it["ei"]
            if noisy and self.attr_noise is not None:
                x = sample_attribute_noise(it["x_index"], self.attr_noise.p_plus,
                                           self.attr_noise.p_minus,
                                           generator=self.generator).to_dense()
            if noisy and self.graph_noise is not None:
                ei = sample_graph_noise(it["pairs"], it["n"], self.graph_noise.p_plus,
                                        self.graph_noise.p_minus, generator=self.generator)
            xs.append(x)
            eis.append(ei + offset)
            batch.append(torch.full((it["n"],), k, dtype=torch.long, device=self.device))
            ys.append(it["y"])
            offset += it["n"]
        return (torch.cat(xs), torch.cat(eis, dim=1), torch.cat(batch),
                torch.tensor(ys, device=self.device))


def train_graph_classifier(model: nn.Module, train_graphs: Sequence[Any],
                           val_graphs: Sequence[Any], *,
                           graph_noise: SparseNoise | tuple[float, float] | None = None,
                           attr_noise: SparseNoise | tuple[float, float] | None = None,
                           lr: float = 1e-3, weight_decay: float = 1e-3, batch_size: int = 32,
                           max_epochs: int = 300, patience: int = 50, device: Any = "auto",
                           seed: int = 0, progress: bool = False) -> TrainingResult:
    """Train a graph classifier (``model(x, edge_index, batch) -> (B, C)``) with noise.

    Every epoch shuffles ``train_graphs`` (seeded) and perturbs every graph afresh; the
    validation loss under noise drives early stopping. Graphs are PyG ``Data`` objects with
    ``x`` ``(n_i, d)``, undirected ``edge_index`` and an integer ``y``.
    """
    attr_noise = _check_noise(attr_noise, "attr_noise")
    graph_noise = _check_noise(graph_noise, "graph_noise")
    lr, weight_decay = _check_rate(lr, "lr"), _check_rate(weight_decay, "weight_decay")
    max_epochs, patience = _positive(max_epochs, "max_epochs"), _positive(patience, "patience")
    batch_size = _positive(batch_size, "batch_size")
    seed = check_nonnegative_int(seed, "seed")
    dev = resolve_device(device)
    rng = seed_everything(seed)
    train = _GraphInputs(train_graphs, attr_noise, graph_noise, dev, seed)
    val = _GraphInputs(val_graphs, attr_noise, graph_noise, dev, seed + 1)
    model.to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    stopper = _EarlyStopping(model, patience)
    for epoch in tqdm(range(max_epochs), desc="training", disable=not progress, leave=False):
        model.train()
        order = rng.permutation(len(train.items))
        total, count = 0.0, 0
        for start in range(0, len(order), batch_size):
            ids = order[start:start + batch_size]
            x, ei, b, y = train.batch(ids, noisy=True)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x, ei, b), y)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(ids)
            count += len(ids)
        model.eval()
        with torch.no_grad():
            x, ei, b, y = val.batch(range(len(val.items)), noisy=True)
            logits = model(x, ei, b)
            val_loss = float(F.cross_entropy(logits, y))
            val_acc = float((logits.argmax(1) == y).float().mean())
        if stopper.update(epoch, total / count, val_loss, val_acc):
            break
    return stopper.finish()


@torch.no_grad()
def evaluate_graph_classifier(model: nn.Module, graphs: Sequence[Any], *, device: Any = "auto"
                              ) -> float:
    """Clean accuracy of a graph classifier on ``graphs``."""
    dev = resolve_device(device)
    inputs = _GraphInputs(graphs, None, None, dev, 0)
    model.to(dev).eval()
    x, ei, b, y = inputs.batch(range(len(inputs.items)), noisy=False)
    return float((model(x, ei, b).argmax(1) == y).float().mean())
