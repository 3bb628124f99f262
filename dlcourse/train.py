"""A small PyTorch training loop with Keras-like history and callbacks.

::

    from dlcourse import train
    history = train.fit(model, (x_train, y_train), epochs=P.epochs, optimizer=opt,
                        val_data=(x_val, y_val),
                        callbacks=[train.EarlyStopping(patience=3, restore_best_weights=True)])
    history.history["val_accuracy"]          # one value per epoch, as in Keras
    train.evaluate(model, (x_test, y_test))  # {"loss": ..., "accuracy": ...}

What it does, per epoch: the model in train mode over ``train_data``
(zero_grad, forward, loss, backward, optional gradient-norm clipping, step,
optional per-step scheduler step), then the validation pass in eval mode, then
the per-epoch scheduler step (``ReduceLROnPlateau`` gets ``val_loss``), then
the callbacks. Metrics are accumulated as tensors and read once per epoch,
so the loop adds no per-batch synchronisation.

``train_data`` / ``val_data`` are a ``DataLoader`` (or any iterable of
``(x, y)`` batches) or an in-memory ``(x, y)`` pair of tensors or arrays. A pair
is cut into batches of ``batch_size`` (default: the profile's, 128), shuffled
every epoch for training with a generator drawn from torch's global RNG (so
``profiles.seed_everything`` makes runs repeatable). Float64 arrays become
float32 and integer labels int64.

History (``History.history``): ``loss``, ``accuracy`` (training, averaged over
the epoch's batches weighted by batch size, as Keras reports them),
``val_loss``, ``val_accuracy`` (only when ``val_data`` is given), ``lr`` (the
learning rate of the first parameter group at the start of the epoch) and
``epoch_time`` (seconds). ``accuracy`` is NaN when it does not apply (e.g. a
regression loss).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from typing import Any, Callable, Iterable

from dlcourse import frameworks

torch = frameworks.import_torch()

__all__ = [
    "fit",
    "evaluate",
    "History",
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
    "Trainer",
]

_EVAL_BATCH_SIZE = 1024
_SCHEDULER_INTERVALS = ("epoch", "step")


# --------------------------------------------------------------------------- history


class History:
    """Per-epoch metrics, shaped like Keras' ``History``.

    Attributes: ``history`` (dict of lists, one value per epoch), ``epoch``
    (list of 0-based epoch indices), ``params`` (the run's settings) and
    ``stopped_epoch`` (0-based index of the last epoch when a callback stopped
    training early, else ``None``).
    """

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict[str, Any] = {}
        self.stopped_epoch: int | None = None

    def _append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        keys = ", ".join(self.history)
        return f"History(epochs={len(self.epoch)}, keys=[{keys}], stopped_epoch={self.stopped_epoch})"


# --------------------------------------------------------------------------- callbacks


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


# --------------------------------------------------------------------------- data


class _PairBatches:
    """Mini-batches over an in-memory (x, y) pair, by slicing (no per-item collation)."""

    def __init__(self, x, y, batch_size: int, shuffle: bool) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __iter__(self):
        n = len(self.x)
        if self.shuffle:
            # Seeded from torch's global RNG, so seed_everything makes runs repeatable.
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, self.batch_size):
                index = order[start : start + self.batch_size]
                yield self.x[index], self.y[index]
        else:
            for start in range(0, n, self.batch_size):
                yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]


def _as_tensor(value, role: str):
    if isinstance(value, torch.Tensor):
        tensor = value
    else:
        try:
            tensor = torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError) as error:
            raise TypeError(f"{role} must be a tensor or an array, got {type(value).__name__}: {error}") from None
    if tensor.dtype == torch.float64:
        tensor = tensor.float()
    elif tensor.dtype in (torch.int8, torch.int16, torch.int32, torch.uint8) and role.endswith("labels"):
        tensor = tensor.long()
    return tensor


def _batches(data, *, role: str, batch_size: int, shuffle: bool):
    """A re-iterable of (x, y) batches from a DataLoader-like iterable or an (x, y) pair."""
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError(f"{role} must be a DataLoader or an (x, y) pair, got a sequence of length {len(data)}")
        x = _as_tensor(data[0], f"{role} inputs")
        y = _as_tensor(data[1], f"{role} labels")
        if len(x) != len(y):
            raise ValueError(f"{role}: x has {len(x)} examples but y has {len(y)}")
        if len(x) == 0:
            raise ValueError(f"{role} is empty")
        return _PairBatches(x, y, batch_size, shuffle)
    if data is None or isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise TypeError(
            f"{role} must be a DataLoader (or another iterable of (x, y) batches) or an (x, y) pair, "
            f"got {type(data).__name__}"
        )
    return data


def _split_batch(batch, role: str):
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch
    raise ValueError(f"{role} must yield (x, y) batches, got {type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}")


def _model_device(model) -> "torch.device":
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


# --------------------------------------------------------------------------- metrics


def _correct(output, target):
    """Number of correct predictions in the batch as a tensor, or None when accuracy does not apply."""
    if output.ndim == 2 and output.shape[1] > 1:
        if target.ndim == 1 and not target.is_floating_point():
            return (output.argmax(dim=1) == target).sum()
        if target.shape == output.shape:  # class probabilities (label smoothing, mixup)
            return (output.argmax(dim=1) == target.argmax(dim=1)).sum()
    return None


class _Meter:
    """Sums loss and correct counts as tensors; read once at the end (one sync per epoch)."""

    def __init__(self) -> None:
        self.loss_sum = None
        self.correct = None
        self.count = 0
        self.accuracy_applies = True

    def update(self, loss, output, target) -> None:
        n = len(target)
        self.count += n
        batch_loss = loss.detach() * n
        self.loss_sum = batch_loss if self.loss_sum is None else self.loss_sum + batch_loss
        if self.accuracy_applies:
            correct = _correct(output.detach(), target)
            if correct is None:
                self.accuracy_applies = False
            else:
                self.correct = correct if self.correct is None else self.correct + correct

    def result(self) -> tuple[float, float]:
        if self.count == 0:
            raise ValueError("no batches: the data is empty")
        loss = self.loss_sum.item() / self.count
        accuracy = self.correct.item() / self.count if self.accuracy_applies and self.correct is not None else math.nan
        return loss, accuracy


def _default_loss():
    return torch.nn.CrossEntropyLoss()


# --------------------------------------------------------------------------- evaluate


def _module_modes(model) -> list[tuple[Any, bool]]:
    return [(module, module.training) for module in model.modules()]


def _restore_modes(modes) -> None:
    for module, training in modes:
        module.training = training


def _run_eval(model, batches, loss_fn, device, role: str) -> tuple[float, float]:
    meter = _Meter()
    with torch.no_grad():
        for batch in batches:
            x, y = _split_batch(batch, role)
            x, y = x.to(device), y.to(device)
            output = model(x)
            meter.update(loss_fn(output, y), output, y)
    return meter.result()


def evaluate(model, data, *, loss_fn: Callable | None = None, device=None) -> dict[str, float]:
    """Loss and accuracy of ``model`` on ``data`` (a DataLoader or an ``(x, y)`` pair), in eval mode.

    The modules' train/eval modes are restored afterwards. ``accuracy`` is NaN
    when it does not apply (e.g. a regression loss).
    """
    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    loss_fn = loss_fn if loss_fn is not None else _default_loss()
    batches = _batches(data, role="data", batch_size=_EVAL_BATCH_SIZE, shuffle=False)
    modes = _module_modes(model)
    model.eval()
    try:
        loss, accuracy = _run_eval(model, batches, loss_fn, device, "data")
    finally:
        _restore_modes(modes)
    return {"loss": loss, "accuracy": accuracy}


# --------------------------------------------------------------------------- fit


class Trainer:
    """What callbacks see: the run's model, optimizer, scheduler, history and stop flag."""

    def __init__(self, model, optimizer, scheduler, history: History, device) -> None:
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.history = history
        self.device = device
        self.epoch = 0
        self.stop_training = False


def _is_plateau(scheduler) -> bool:
    return isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)


def _summary_writer(log_dir):
    # tensorboard imports TensorFlow when it is installed, which logs to fd 2.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with frameworks.quiet_stderr():
        from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(log_dir=os.fspath(log_dir))


def _format_postfix(logs: dict[str, float]) -> str:
    names = {"loss": "loss", "accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
    parts = [f"{short}={logs[key]:.4f}" for key, short in names.items() if key in logs and not math.isnan(logs[key])]
    parts.append(f"lr={logs['lr']:.3g}")
    return " ".join(parts)


def fit(
    model,
    train_data,
    *,
    epochs: int,
    optimizer,
    loss_fn: Callable | None = None,
    val_data=None,
    scheduler=None,
    scheduler_interval: str = "epoch",
    callbacks: Iterable[Callback] = (),
    device=None,
    progress: bool = True,
    tensorboard_dir: str | os.PathLike | None = None,
    grad_clip_norm: float | None = None,
    batch_size: int | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return its :class:`History`.

    Args:
        model: a ``torch.nn.Module`` returning logits (for the default loss).
        train_data, val_data: a DataLoader or an ``(x, y)`` pair of tensors/arrays.
        epochs: number of epochs (callbacks may stop earlier).
        optimizer: a ``torch.optim.Optimizer`` over the model's parameters.
        loss_fn: defaults to ``torch.nn.CrossEntropyLoss()`` (logits, integer labels).
        scheduler: a ``torch.optim.lr_scheduler`` scheduler, stepped once per epoch
            (``scheduler_interval="epoch"``) or per optimizer step (``"step"``);
            ``ReduceLROnPlateau`` is stepped per epoch with ``val_loss``.
        callbacks: :class:`Callback` instances (``EarlyStopping``, ``ModelCheckpoint``, ...).
        device: ``None`` keeps the device the model's parameters are on (CPU for a new model).
        progress: one tqdm bar on stdout, updated per epoch; ``False`` prints nothing.
        tensorboard_dir: if set, write loss/accuracy/lr scalars and weight and
            gradient histograms per epoch there (``torch.utils.tensorboard``).
        grad_clip_norm: if set, clip the global gradient norm to this before each step.
        batch_size: batch size for ``(x, y)`` pairs (default: the profile's, 128).
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive int, got {epochs!r}")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if scheduler_interval not in _SCHEDULER_INTERVALS:
        raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    if scheduler is not None and _is_plateau(scheduler):
        if scheduler_interval != "epoch":
            raise ValueError("ReduceLROnPlateau is stepped once per epoch with val_loss: use scheduler_interval='epoch'")
        if val_data is None:
            raise ValueError("ReduceLROnPlateau is stepped with val_loss: pass val_data")
    if grad_clip_norm is not None and not grad_clip_norm > 0:
        raise ValueError(f"grad_clip_norm must be positive, got {grad_clip_norm!r}")
    if batch_size is None:
        from dlcourse import profiles

        batch_size = profiles.get().batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    callbacks = list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be dlcourse.train.Callback instances, got {type(callback).__name__}")

    device = torch.device(device) if device is not None else _model_device(model)
    model.to(device)
    loss_fn = loss_fn if loss_fn is not None else _default_loss()
    train_batches = _batches(train_data, role="train_data", batch_size=batch_size, shuffle=True)
    val_batches = (
        None
        if val_data is None
        else _batches(val_data, role="val_data", batch_size=max(batch_size, _EVAL_BATCH_SIZE), shuffle=False)
    )

    history = History()
    history.params = {
        "epochs": epochs,
        "steps": len(train_batches) if hasattr(train_batches, "__len__") else None,
        "batch_size": batch_size if isinstance(train_batches, _PairBatches) else getattr(train_batches, "batch_size", None),
        "optimizer": type(optimizer).__name__,
        "scheduler": None if scheduler is None else type(scheduler).__name__,
        "scheduler_interval": scheduler_interval,
        "grad_clip_norm": grad_clip_norm,
        "device": str(device),
    }
    trainer = Trainer(model, optimizer, scheduler, history, device)
    initial_modes = _module_modes(model)
    writer = _summary_writer(tensorboard_dir) if tensorboard_dir is not None else None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=epochs, file=sys.stdout, unit="epoch", desc="fit", leave=True, ncols=110)

    parameters = [p for p in model.parameters() if p.requires_grad]
    logs: dict[str, float] = {}
    try:
        for callback in callbacks:
            callback.trainer = trainer
            callback.on_train_begin(trainer)
        for epoch in range(epochs):
            trainer.epoch = epoch
            start = time.perf_counter()
            lr = float(optimizer.param_groups[0]["lr"])
            model.train()
            meter = _Meter()
            for batch in train_batches:
                x, y = _split_batch(batch, "train_data")
                x, y = x.to(device), y.to(device)
                output = model(x)
                loss = loss_fn(output, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(parameters, grad_clip_norm)
                optimizer.step()
                if scheduler is not None and scheduler_interval == "step":
                    scheduler.step()
                meter.update(loss, output, y)
            train_loss, train_accuracy = meter.result()
            logs = {"loss": train_loss, "accuracy": train_accuracy}
            if val_batches is not None:
                model.eval()
                val_loss, val_accuracy = _run_eval(model, val_batches, loss_fn, device, "val_data")
                logs.update(val_loss=val_loss, val_accuracy=val_accuracy)
            if scheduler is not None and scheduler_interval == "epoch":
                if _is_plateau(scheduler):
                    scheduler.step(logs["val_loss"])
                else:
                    scheduler.step()
            logs["lr"] = lr
            logs["epoch_time"] = time.perf_counter() - start
            history._append(epoch, logs)
            if writer is not None:
                _log_tensorboard(writer, model, logs, epoch)
            for callback in callbacks:
                callback.on_epoch_end(epoch, dict(logs))
            if bar is not None:
                bar.set_postfix_str(_format_postfix(logs), refresh=False)
                bar.update(1)
            if trainer.stop_training:
                history.stopped_epoch = epoch
                if bar is not None:
                    bar.set_description(f"fit (stopped early at epoch {epoch + 1})", refresh=True)
                break
        for callback in callbacks:
            callback.on_train_end(dict(logs))
    finally:
        _restore_modes(initial_modes)
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    return history


def _log_tensorboard(writer, model, logs: dict[str, float], epoch: int) -> None:
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
