"""Complete verification and linearity grafting (Chen, Zhang et al., ICML 2022).

- :mod:`~certlab.verification.lirpa_patches`: auto_LiRPA 0.3 with its torch 2.13
  compatibility patches.
- :mod:`~certlab.verification.lirpa`: IBP / CROWN / alpha-CROWN bounds, unstable neurons and
  the cached auto_LiRPA modules.
- :mod:`~certlab.verification.grafted`: ``GraftedReLU`` and its exact bound operator.
- :mod:`~certlab.verification.numerics`: float64 twins, round-off tolerances and
  counterexample checks (what "verified" may rely on).
- :mod:`~certlab.verification.exact_milp`: the exact MILP (``exact_min_margins``).
- :mod:`~certlab.verification.bab` and :mod:`~certlab.verification.verify`: branch and bound
  with beta-CROWN splits and ``verify``.
- :mod:`~certlab.verification.attacks`: PGD and robust accuracy.
- :mod:`~certlab.verification.models`: ConvBig, small CNNs and MLPs; grafting insertion.
- :mod:`~certlab.verification.training`: fast adversarial training with GradAlign and
  grafting fine-tuning.
- :mod:`~certlab.verification.report`: Table 1 of one model (``CertificationReport``), its
  stored headline numbers and the merge of stored slices of the verified images.
- :mod:`~certlab.verification.grafting`: instability / significance scores, the gamma-decay
  selection, baselines, and the certification evaluation.

Import order (no cycles): lirpa_patches <- grafted <- lirpa <- numerics <- exact_milp <- bab
<- verify <- grafting; report stands alone.
"""

from . import (attacks, bab, exact_milp, grafted, grafting, lirpa, lirpa_patches, models,
               numerics, report, training, verify as _verify_module)
from .attacks import *  # noqa: F401,F403
from .bab import *  # noqa: F401,F403
from .exact_milp import *  # noqa: F401,F403
from .grafted import *  # noqa: F401,F403
from .grafting import *  # noqa: F401,F403
from .lirpa import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .numerics import *  # noqa: F401,F403
from .report import *  # noqa: F401,F403
from .training import *  # noqa: F401,F403
from .verify import *  # noqa: F401,F403

__all__ = list(dict.fromkeys([
    *lirpa.__all__, *grafted.__all__, *numerics.__all__, *exact_milp.__all__, *bab.__all__,
    *_verify_module.__all__, *attacks.__all__, *models.__all__, *training.__all__,
    *report.__all__, *grafting.__all__]))
