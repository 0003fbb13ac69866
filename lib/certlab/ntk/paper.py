"""The architectures, SVM regularisation and published numbers of Sabanayagam et al. (ICLR 2025).

The eight architectures of the paper's tables as keyword arguments of
:func:`certlab.ntk.gnn_ntk`, and the authors' values of the SVM's C (Cora-MLb values from
their configuration files; C = 0.001 for every architecture on the CSBM).

:func:`published_ntk` computes the kernels *as the authors' code computes them* for their
Cora-MLb tables (``config/label_certification_binary/coramlb.yaml`` of their repository):
row-normalised aggregation ``D^-1 (A + I)`` for the GCN family (the paper's text says
symmetric), APPNP with teleport ``alpha = 0`` (ten steps of pure propagation), the
covariance clamp before every ReLU expectation (:func:`certlab.ntk.clamp_covariance`) and, for
skip-alpha, their Theta without the ``(1 - a)^2`` factor
(:func:`certlab.ntk.skip_alpha_reference_ntk`). :data:`PAPER_ARCHITECTURES` is the
architectures as the paper describes them, with the infinite-width kernel.
"""

from __future__ import annotations

import numpy as np

from .gnn import gnn_ntk, skip_alpha_reference_ntk

__all__ = ["PAPER_ARCHITECTURES", "PAPER_C_CORA_MLB", "PAPER_C_CSBM",
           "PUBLISHED_SAMPLEWISE_CORA_MLB", "PUBLISHED_COLLECTIVE_GCN_CORA_MLB",
           "PUBLISHED_COLLECTIVE_GCN_CSBM",
           "PUBLISHED_SETTINGS", "published_ntk"]

#: Display name -> ``gnn_ntk`` keyword arguments (depth 1, ReLU unless the model is linear).
PAPER_ARCHITECTURES: dict[str, dict] = {
    "GCN": dict(model="gcn"),
    "SGC": dict(model="sgc"),
    "APPNP": dict(model="appnp"),
    "GIN": dict(model="gin"),
    "GraphSAGE": dict(model="sage"),
    "GCN skip-alpha": dict(model="gcn", skip="alpha", skip_alpha=0.1),
    "GCN skip-PC": dict(model="gcn", skip="pc"),
    "MLP": dict(model="mlp"),
}

#: The authors' C per architecture on Cora-MLb.
PAPER_C_CORA_MLB: dict[str, float] = {
    "GCN": 0.075, "SGC": 0.075, "GCN skip-PC": 0.075, "GCN skip-alpha": 0.1,
    "MLP": 0.025, "GIN": 0.025, "GraphSAGE": 0.0075, "APPNP": 0.5,
}

#: The authors' C on the CSBM (every architecture).
PAPER_C_CSBM = 0.001

#: Published Cora-MLb sample-wise certified accuracy (%) at 1 / 2 / 3 flipped labels of 20
#: (mean over 5 seeds; the authors' stored notebook outputs).
PUBLISHED_SAMPLEWISE_CORA_MLB: dict[str, tuple[float, float, float]] = {
    "GCN": (68.7, 32.6, 5.5), "SGC": (68.2, 35.3, 9.7), "APPNP": (79.1, 43.1, 24.9),
    "GIN": (53.9, 9.9, 0.1), "GraphSAGE": (52.8, 10.7, 0.4), "GCN skip-alpha": (64.2, 29.9, 4.7),
    "GCN skip-PC": (58.4, 18.1, 0.9), "MLP": (22.7, 0.6, 0.0),
}

#: Published Cora-MLb collective certified ratio (%) of the GCN by budget (fraction of labels).
PUBLISHED_COLLECTIVE_GCN_CORA_MLB: dict[float, float] = {
    0.05: 86.4, 0.10: 55.6, 0.15: 46.8, 0.20: 43.6, 0.25: 43.6, 0.30: 41.6, 0.50: 8.4,
}

#: The paper's collective certified ratio (%) of the GCN on the CSBM (40 labels), by fraction
#: of the labels flipped (the authors' stored notebook outputs, mean over 5 seeds).
PUBLISHED_COLLECTIVE_GCN_CSBM: dict[float, float] = {
    0.05: 85.7, 0.10: 67.0, 0.15: 48.0, 0.20: 44.7, 0.25: 40.8, 0.30: 34.7, 0.50: 2.9,
}


#: What :func:`published_ntk` changes against :data:`PAPER_ARCHITECTURES`, per architecture
#: (``gnn_ntk`` keyword arguments; every ReLU kernel also gets ``covariance_clamp=True``).
PUBLISHED_SETTINGS: dict[str, dict] = {
    "GCN": dict(normalization="row"),
    "SGC": dict(normalization="row"),
    "APPNP": dict(appnp_alpha=0.0),
    "GIN": {},
    "GraphSAGE": {},
    "GCN skip-alpha": dict(normalization="row"),
    "GCN skip-PC": dict(normalization="row"),
    "MLP": {},
}


def published_ntk(adj, features, architecture: str) -> np.ndarray:
    """The NTK (float64 (n, n)) of one of the paper's architectures as the authors computed it.

    Args:
        adj: symmetric 0/1 adjacency (n, n), as for :func:`certlab.ntk.gnn_ntk`.
        features: node features (n, d).
        architecture: a key of :data:`PAPER_ARCHITECTURES` (``"GCN"``, ..., ``"MLP"``).

    Returns:
        The kernel with the authors' settings (module docstring, :data:`PUBLISHED_SETTINGS`).
        It is not the infinite-width NTK of the architecture the paper describes (that is
        ``gnn_ntk(adj, features, **PAPER_ARCHITECTURES[architecture])``), and the clamp can
        make it indefinite; chapter 22 uses it to reproduce the published tables.
    """
    if architecture not in PAPER_ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; choose from "
                         f"{list(PAPER_ARCHITECTURES)}")
    kwargs = {**PAPER_ARCHITECTURES[architecture], **PUBLISHED_SETTINGS[architecture]}
    if kwargs.get("skip") == "alpha":
        kwargs.pop("skip")
        return skip_alpha_reference_ntk(adj, features, covariance_clamp=True, **kwargs)
    return gnn_ntk(adj, features, covariance_clamp=True, **kwargs)
