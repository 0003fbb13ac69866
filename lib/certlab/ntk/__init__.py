"""Neural tangent kernels of graph neural networks (Sabanayagam et al., ICLR 2025).

- :func:`gnn_ntk`: closed-form infinite-width NTK (n, n) for node classification of GCN,
  SGC, APPNP, GIN, GraphSAGE and MLP, with ReLU or linear activation, any depth, skip-PC /
  skip-alpha connections (:mod:`certlab.ntk.gnn`).
- :mod:`certlab.ntk.aggregation`: the aggregation matrices S.
- :mod:`certlab.ntk.relu_kernels`: arc-cosine (ReLU) Gaussian expectations.
- :mod:`certlab.ntk.empirical`: finite-width PyTorch/PyG networks in the NTK
  parameterisation and their empirical NTK J J^T, converging to :func:`gnn_ntk`.
- :mod:`certlab.ntk.paper`: the paper's eight architectures, the authors' SVM C values and
  :func:`published_ntk`, the kernels as the authors' code computes them.
- :mod:`certlab.ntk.analysis`: normalised kernels, kernel-target alignment and the NTK-SVM's
  test accuracy.
"""

from .analysis import (SVMEvaluation, kernel_svm_accuracy, kernel_target_alignment,
                       normalized_kernel)
from .aggregation import (Aggregation, aggregation_matrix, aggregation_operator,
                          normalized_adjacency, validate_adjacency)
from .empirical import (NTKLinear, WideGNN, build_wide_gnn, empirical_gnn_ntk, empirical_ntk,
                        relative_error, width_convergence)
from .gnn import (MODELS, GNNArchitecture, clamp_covariance, gnn_ntk, resolve_architecture,
                  skip_alpha_reference_ntk)
from .paper import (PAPER_ARCHITECTURES, PAPER_C_CORA_MLB, PAPER_C_CSBM,
                    PUBLISHED_COLLECTIVE_GCN_CORA_MLB, PUBLISHED_COLLECTIVE_GCN_CSBM,
                    PUBLISHED_SAMPLEWISE_CORA_MLB,
                    PUBLISHED_SETTINGS, published_ntk)
from .relu_kernels import (arccos_kernel_0, arccos_kernel_1, linear_expectations,
                           relu_expectations)

__all__ = [
    "PAPER_ARCHITECTURES", "PAPER_C_CORA_MLB", "PAPER_C_CSBM", "PUBLISHED_COLLECTIVE_GCN_CORA_MLB",
    "PUBLISHED_COLLECTIVE_GCN_CSBM",
    "PUBLISHED_SAMPLEWISE_CORA_MLB", "PUBLISHED_SETTINGS", "published_ntk", "MODELS", "Aggregation", "SVMEvaluation", "kernel_svm_accuracy", "kernel_target_alignment",
    "normalized_kernel", "GNNArchitecture", "NTKLinear", "WideGNN", "aggregation_matrix",
    "aggregation_operator", "arccos_kernel_0", "arccos_kernel_1", "build_wide_gnn",
    "clamp_covariance",
    "empirical_gnn_ntk", "empirical_ntk", "gnn_ntk", "linear_expectations",
    "normalized_adjacency", "relative_error", "relu_expectations", "resolve_architecture",
    "skip_alpha_reference_ntk", "validate_adjacency", "width_convergence",
]
