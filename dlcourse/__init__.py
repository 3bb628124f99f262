"""Deep Learning Fundamentals course helpers.

One lookup for everything a notebook needs::

    from dlcourse import data, plots, train, experiments, profiles, checks, frameworks, gradient_check

Submodules are imported lazily, so ``import dlcourse`` (and any module that
does not need a framework) never imports torch or tensorflow.

==============  ==================================================  ==========
module          what it does                                        notebooks
==============  ==================================================  ==========
data            MNIST / Fashion-MNIST loading, splits, loaders      all
profiles        DLCOURSE_PROFILE sizing (ci/default/full), seeding  all
checks          comparison helpers with readable failure messages   all tests
plots           curves with seed bands, grids, histograms, paths    all
train           PyTorch training loop with callbacks and History    01-10
callbacks       EarlyStopping, ModelCheckpoint, TensorBoard (train) 01-10
experiments     multi-seed runs cached on disk                      01-10
frameworks      quiet imports of TensorFlow/Keras and PyTorch       01-10
gradient_check  numeric gradients and relative errors (NumPy)       01, 02
==============  ==================================================  ==========
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("data", "profiles", "checks", "plots", "train", "callbacks", "experiments", "frameworks",
               "gradient_check")

__all__ = list(_SUBMODULES) + ["__version__"]


def __getattr__(name: str):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'dlcourse' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
