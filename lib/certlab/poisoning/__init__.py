"""Exact certificates against label poisoning (training-label flips).

Part II (Sabanayagam et al., ICLR 2025):

- :mod:`~certlab.poisoning.validation`: shared input checks.
- :mod:`~certlab.poisoning.svm`: the bias-free hinge-loss SVM dual (batched projected
  Newton, exact active-set fallback, extended-precision polish; KKT residual 1e-10 and a
  rigorous bound on the decision values' error), one-vs-rest multi-class, cross-validated C,
  kernel ridge regression.
- :mod:`~certlab.poisoning.milp`: the KKT-based MILP (ortools) whose optimum is the exact
  worst case; sample-wise, collective, multi-class.
- :mod:`~certlab.poisoning.enumeration`: every flip set, batched exact re-solves (the
  independent ground truth).
- :mod:`~certlab.poisoning.certificates`: the public ``min_label_flips``,
  ``collective_flips`` and ``certify_samplewise``.

Part III (Mohgaonkar et al., ICLR 2026):

- :mod:`~certlab.poisoning.closed_form`: ScaLabelCert, exact by sorting for models linear in
  the labels (KRR; the SVM in its linear regime).
- :mod:`~certlab.poisoning.partition` and :mod:`~certlab.poisoning.ensembles`: hash
  partitions, partition-aggregation ensembles, the DPA certificate and EnsembleCert (and
  :func:`~certlab.poisoning.ensembles.measure_ensemble_looseness`, how loose its multi-class
  per-part bounds are against brute force).
- :mod:`~certlab.poisoning.features`: the fixed MNIST feature map and MLP NTKs.
"""

from . import (certificates, closed_form, ensembles, enumeration, features, milp, partition, svm,
               validation)
from .certificates import *  # noqa: F401,F403
from .closed_form import *  # noqa: F401,F403
from .ensembles import *  # noqa: F401,F403
from .enumeration import *  # noqa: F401,F403
from .features import *  # noqa: F401,F403
from .milp import *  # noqa: F401,F403
from .partition import *  # noqa: F401,F403
from .svm import *  # noqa: F401,F403
from .validation import *  # noqa: F401,F403

__all__ = [*validation.__all__, *svm.__all__, *milp.__all__, *enumeration.__all__,
           *certificates.__all__, *closed_form.__all__, *partition.__all__, *ensembles.__all__,
           *features.__all__]
