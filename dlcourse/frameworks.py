"""Quiet imports of PyTorch, TensorFlow and Keras.

TensorFlow writes log lines straight to file descriptor 2 while it is imported
(absl's "All log messages before absl::InitializeLog() ...", the oneDNN notice,
the CPU feature guard), even with ``TF_CPP_MIN_LOG_LEVEL=3``. In a Jupyter
kernel, ipykernel forwards whatever reaches descriptor 2 as a ``stderr`` stream
and nbgrader scores a test cell with stderr output as 0. So the imports here
point descriptor 2 (and ``sys.stderr``) at ``/dev/null`` for the duration of the
import only, and set the framework loggers to errors-only afterwards.

``TF_ENABLE_ONEDNN_OPTS=0`` would also silence the oneDNN notice but roughly
halves CPU speed, so it is deliberately left alone.

Usage, in an ordinary (non-test) cell near the top of a notebook::

    from dlcourse import frameworks
    torch = frameworks.import_torch()
    keras = frameworks.import_keras()      # Keras 3, TensorFlow backend
"""

from __future__ import annotations

import contextlib
import importlib
import io
import logging
import os
import sys
import warnings

__all__ = ["import_torch", "import_tensorflow", "import_keras", "quiet_stderr"]


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # closed or detached stream
            pass


@contextlib.contextmanager
def quiet_stderr():
    """Silence everything written to stderr inside the ``with`` block.

    Covers both Python-level writes (``sys.stderr``, warnings) and native
    writes to file descriptor 2 (C++ logging in TensorFlow). Descriptor 2 is
    restored afterwards, so later errors are still visible.
    """
    _flush_std_streams()
    saved_fd = None
    devnull_fd = None
    try:
        saved_fd = os.dup(2)
        devnull_fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull_fd, 2)
    except OSError:  # no descriptor 2 (e.g. some embedded interpreters): Python level only
        if saved_fd is not None:
            os.close(saved_fd)
        saved_fd = None
    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        _flush_std_streams()
        if saved_fd is not None:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
        if devnull_fd is not None:
            os.close(devnull_fd)


def _quiet_loggers() -> None:
    """Errors only from the Python loggers TensorFlow and Keras write through."""
    for name in ("tensorflow", "absl", "keras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass
    # Deprecation chatter from inside the frameworks, not from the user's code.
    for module in (r"tensorflow(\.|$)", r"keras(\.|$)", r"tf_keras(\.|$)", r"absl(\.|$)"):
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", category=FutureWarning, module=module)
    # Keras' fit() defaults to shuffle=True and then warns on every fit over a
    # tf.data.Dataset (which it cannot shuffle): noise, not advice.
    warnings.filterwarnings(
        "ignore", message=r"`shuffle=True` was passed, but will be ignored", category=UserWarning
    )


def _quiet_import(module_name: str):
    if module_name in sys.modules:
        return sys.modules[module_name]
    with quiet_stderr():
        module = importlib.import_module(module_name)
    return module


def import_torch():
    """Import and return ``torch`` without writing to stderr."""
    return _quiet_import("torch")


def import_tensorflow():
    """Import and return ``tensorflow`` with its import-time log lines silenced.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless already set) so TensorFlow's C++
    logging stays quiet after the import too; real errors still raise
    Python exceptions.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    tf = _quiet_import("tensorflow")
    _quiet_loggers()
    try:
        tf.get_logger().setLevel(logging.ERROR)
    except AttributeError:
        pass
    return tf


def import_keras():
    """Import and return Keras 3 with the TensorFlow backend, quietly.

    Sets ``KERAS_BACKEND=tensorflow`` when it is unset (an explicit choice by
    the user is respected).
    """
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if os.environ["KERAS_BACKEND"] == "tensorflow":
        import_tensorflow()
    keras = _quiet_import("keras")
    _quiet_loggers()
    return keras
