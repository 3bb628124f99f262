"""One switch, ``DLCOURSE_PROFILE``, sizes every experiment in the course.

=========  =======  =====  ======  ======  ===============  ==========
profile    n_train  n_val  n_test  epochs  seeds            batch_size
=========  =======  =====  ======  ======  ===============  ==========
ci         2000     500    1000    2       (0,)             128
default    10000    2000   2000    8       (0, 1, 2)        128
full       all      5000   all     20      (0, 1, 2, 3, 4)  128
=========  =======  =====  ======  ======  ===============  ==========

``ci`` runs a notebook in under a minute, ``default`` in a few minutes on a
2-core laptop, ``full`` uses the full datasets (a GPU helps). ``None`` means
"all available".

Seeding helpers live here too: :func:`seed_everything` seeds Python, NumPy and,
when they are already imported, PyTorch and TensorFlow (it never imports them:
TensorFlow's import alone costs seconds).
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from typing import Any

import numpy as np

__all__ = ["Profile", "PROFILES", "ENV_VAR", "DEFAULT", "get", "seed_everything"]

ENV_VAR = "DLCOURSE_PROFILE"
DEFAULT = "default"


@dataclasses.dataclass(frozen=True)
class Profile:
    """The sizes one profile gives every experiment."""

    name: str
    n_train: int | None
    n_val: int | None
    n_test: int | None
    epochs: int
    seeds: tuple[int, ...]
    batch_size: int = 128

    def choose(self, *, ci: Any, default: Any, full: Any) -> Any:
        """Return the value given for this profile, e.g. ``P.choose(ci=1, default=4, full=10)``."""
        return {"ci": ci, "default": default, "full": full}[self.name]


PROFILES: dict[str, Profile] = {
    "ci": Profile("ci", n_train=2000, n_val=500, n_test=1000, epochs=2, seeds=(0,)),
    "default": Profile("default", n_train=10000, n_val=2000, n_test=2000, epochs=8, seeds=(0, 1, 2)),
    "full": Profile("full", n_train=None, n_val=5000, n_test=None, epochs=20, seeds=(0, 1, 2, 3, 4)),
}


def get(name: str | Profile | None = None) -> Profile:
    """The profile called ``name``, or the one ``$DLCOURSE_PROFILE`` names (default ``default``).

    A ``Profile`` passed in is returned as is. Raises ``ValueError`` naming the
    bad value and the valid ones.
    """
    if isinstance(name, Profile):
        return name
    source = "argument"
    if name is None:
        name = os.environ.get(ENV_VAR, "").strip() or DEFAULT
        source = f"environment variable {ENV_VAR}"
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in PROFILES:
        valid = ", ".join(repr(n) for n in PROFILES)
        raise ValueError(
            f"unknown profile {name!r} (from the {source}); valid profiles are {valid}. "
            f"Set e.g. {ENV_VAR}=ci for a quick run."
        )
    return PROFILES[key]


def seed_everything(seed: int, *, deterministic: bool = False) -> None:
    """Seed ``random``, NumPy's global generator, and torch / TensorFlow if already imported.

    ``deterministic=True`` additionally asks PyTorch for deterministic
    algorithms (``torch.use_deterministic_algorithms(True, warn_only=True)``)
    and TensorFlow for deterministic ops. Either can be slower; it is off by default.
    Sets ``PYTHONHASHSEED`` for subprocesses (it cannot change this process's hashing).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)

    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        torch.manual_seed(seed)  # also seeds every CUDA device
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            if hasattr(torch.backends, "cudnn"):
                torch.backends.cudnn.benchmark = False
                torch.backends.cudnn.deterministic = True

    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "random"):
        keras_utils = getattr(getattr(sys.modules.get("keras"), "utils", None), "set_random_seed", None)
        if keras_utils is not None:
            keras_utils(seed)  # seeds Python, NumPy and the backend together
        else:
            tf.random.set_seed(seed)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
