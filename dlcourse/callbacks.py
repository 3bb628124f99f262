"""Callbacks for :func:`dlcourse.train.fit`, shaped like ``keras.callbacks``.

::

    from dlcourse import train   # the same classes, re-exported there
    train.fit(model, data, epochs=20, optimizer=opt, val_data=val,
              callbacks=[train.EarlyStopping(patience=3, restore_best_weights=True),
                         train.ModelCheckpoint("best.pt")])

A callback sees the run through ``self.trainer`` (``model``, ``optimizer``,
``scheduler``, ``history``, ``device``, ``epoch`` and ``stop_training``, which a
callback sets to end training after the current epoch). Hooks run in the
order the callbacks were given. Learning-rate schedules are not callbacks
here: ``fit`` takes a ``torch.optim.lr_scheduler`` scheduler directly.
"""

from __future__ import annotations

import math
import os
import tempfile
from typing import TYPE_CHECKING, Any

from dlcourse import frameworks

if TYPE_CHECKING:
    from dlcourse.train import Trainer

torch = frameworks.import_torch()

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "TensorBoard"]


class Callback:
    """Base class: override any of the hooks. Stop training with ``trainer.stop_training = True``.

    ``self.trainer`` (with ``.model``, ``.optimizer``, ``.history``,
    ``.stop_training``, ``.epoch``) is set before ``on_train_begin`` runs.
    """

    trainer: "Trainer"

    def on_train_begin(self, trainer: "Trainer") -> None:
        self.trainer = trainer

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        pass

    def on_train_end(self, logs: dict[str, float]) -> None:
        pass


_MAXIMIZED = ("acc", "accuracy", "auc", "precision", "recall", "f1")


def _resolve_mode(monitor: str, mode: str, owner: str) -> str:
    if mode in ("min", "max"):
        return mode
    if mode != "auto":
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    base = monitor.removeprefix("val_")
    if "loss" in base or "error" in base:
        return "min"
    if base in _MAXIMIZED:
        return "max"
    raise ValueError(
        f"{owner}: cannot tell whether {monitor!r} should go up or down; pass mode='min' or mode='max'"
    )


class _MonitorCallback(Callback):
    """Tracks the best value of ``monitor`` with Keras' improvement rule."""

    def __init__(self, monitor: str, mode: str, min_delta: float) -> None:
        self.monitor = monitor
        self.mode = _resolve_mode(monitor, mode, type(self).__name__)
        self.min_delta = abs(float(min_delta))
        self.best: float | None = None
        self.best_epoch: int | None = None

    def _reset(self) -> None:
        self.best = None
        self.best_epoch = None

    def _current(self, logs: dict[str, float]) -> float:
        if self.monitor not in logs:
            hint = " (pass val_data to fit, or monitor a training metric)" if self.monitor.startswith("val_") else ""
            raise ValueError(
                f"{type(self).__name__} monitors {self.monitor!r}, but this epoch's logs only have "
                f"{sorted(logs)}{hint}"
            )
        return float(logs[self.monitor])

    def _is_improvement(self, current: float) -> bool:
        if self.best is None:
            return not math.isnan(current)
        if self.mode == "min":
            return current + self.min_delta < self.best
        return current - self.min_delta > self.best


def _state_copy(model) -> dict[str, Any]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


class EarlyStopping(_MonitorCallback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs (Keras semantics).

    An epoch improves on the best so far when ``current < best - min_delta``
    (``mode="min"``) or ``current > best + min_delta`` (``mode="max"``);
    ``mode="auto"`` picks ``min`` for losses and ``max`` for accuracies.
    Training stops at the end of the epoch where ``patience`` epochs in a row
    brought no improvement. With ``restore_best_weights=True`` the model gets
    the weights of the best epoch back when training ends.

    After training: ``best``, ``best_epoch`` (0-based) and ``stopped_epoch``
    (0-based, ``None`` if it never stopped training).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = False,
    ) -> None:
        if int(patience) != patience or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be a non-negative int, got {patience!r}")
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.restore_best_weights = restore_best_weights
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, Any] | None = None

    def on_train_begin(self, trainer: "Trainer") -> None:
        super().on_train_begin(trainer)
        self._reset()
        self.wait = 0
        self.stopped_epoch = None
        self.best_weights = None

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        current = self._current(logs)
        self.wait += 1
        if self._is_improvement(current):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = _state_copy(self.trainer.model)
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.trainer.stop_training = True

    def on_train_end(self, logs: dict[str, float]) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.trainer.model.load_state_dict(self.best_weights)


class ModelCheckpoint(_MonitorCallback):
    """Save the model's ``state_dict`` to ``path`` whenever ``monitor`` reaches a new best.

    Load it back with ``model.load_state_dict(torch.load(path))``. The file is
    written atomically (temporary file, then rename). After training:
    ``best``, ``best_epoch`` (0-based), ``path``.
    """

    def __init__(self, path: str | os.PathLike, monitor: str = "val_loss", mode: str = "auto") -> None:
        super().__init__(monitor, mode, 0.0)
        self.path = os.fspath(path)

    def on_train_begin(self, trainer: "Trainer") -> None:
        super().on_train_begin(trainer)
        self._reset()
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        current = self._current(logs)
        if self._is_improvement(current):
            self.best, self.best_epoch = current, epoch
            self._save()

    def _save(self) -> None:
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, tmp_path = tempfile.mkstemp(dir=folder, prefix=".checkpoint-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                torch.save(self.trainer.model.state_dict(), handle)
            os.replace(tmp_path, self.path)
        except BaseException:
            if os.path.exists(tmp_path):
                os.unlink(tmp_path)
            raise


class TensorBoard(Callback):
    """Write loss/accuracy/lr scalars and weight and gradient histograms to ``log_dir`` each epoch.

    Uses ``torch.utils.tensorboard``; view with ``tensorboard --logdir LOG_DIR``.
    ``fit(tensorboard_dir=...)`` adds one of these before the other callbacks.
    The writer is closed when training ends, also when it ends with an error.
    """

    def __init__(self, log_dir: str | os.PathLike) -> None:
        self.log_dir = os.fspath(log_dir)
        self.writer = None

    def on_train_begin(self, trainer: "Trainer") -> None:
        super().on_train_begin(trainer)
        self.writer = _summary_writer(self.log_dir)

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        _log_epoch(self.writer, self.trainer.model, logs, epoch)

    def on_train_end(self, logs: dict[str, float]) -> None:
        self.close()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _summary_writer(log_dir: str):
    # tensorboard imports TensorFlow when it is installed, which logs to fd 2.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with frameworks.quiet_stderr():
        from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(log_dir=log_dir)


def _log_epoch(writer, model, logs: dict[str, float], epoch: int) -> None:
    step = epoch + 1
    for metric in ("loss", "accuracy"):
        if not math.isnan(logs[metric]):
            writer.add_scalar(f"{metric}/train", logs[metric], step)
        if f"val_{metric}" in logs and not math.isnan(logs[f"val_{metric}"]):
            writer.add_scalar(f"{metric}/val", logs[f"val_{metric}"], step)
    writer.add_scalar("lr", logs["lr"], step)
    for name, parameter in model.named_parameters():
        writer.add_histogram(f"weights/{name}", parameter.detach().cpu(), step)
        if parameter.grad is not None:
            writer.add_histogram(f"gradients/{name}", parameter.grad.detach().cpu(), step)
    writer.flush()
