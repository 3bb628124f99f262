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
the callbacks (defined in :mod:`dlcourse.callbacks`, re-exported here). Metrics are accumulated as tensors and read once per epoch,
so the loop adds no per-batch synchronisation.

``train_data`` / ``val_data`` are a ``DataLoader`` (or any iterable of
``(x, y)`` batches) or an in-memory ``(x, y)`` pair of tensors or arrays. A pair
is cut into batches of ``batch_size`` (default: the profile's, 128) by
:func:`dlcourse.batching.pair_loader`, shuffled every epoch for training with a
generator drawn from torch's global RNG (so ``profiles.seed_everything`` makes
runs repeatable). Float64 arrays become float32 and integer labels int64;
values are not rescaled.

The model and each batch go to ``device`` (default ``"auto"``: CUDA, then
Apple's MPS, then the CPU, as Keras does; :func:`resolve_device` says which).
On the CPU the numbers are the same as with ``device="cpu"``.

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
import time
from typing import Any, Callable, Iterable

from dlcourse import frameworks
from dlcourse.batching import as_batches, split_batch
from dlcourse.callbacks import Callback, EarlyStopping, ModelCheckpoint, TensorBoard
from dlcourse.devices import resolve_device

torch = frameworks.import_torch()

__all__ = [
    "fit",
    "evaluate",
    "resolve_device",
    "History",
    "Callback",
    "EarlyStopping",
    "ModelCheckpoint",
    "TensorBoard",
    "Trainer",
    "Meter",
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


# --------------------------------------------------------------------------- metrics


def _correct(output, target):
    """Number of correct predictions in the batch as a tensor, or None when accuracy does not apply."""
    if output.ndim == 2 and output.shape[1] > 1:
        if target.ndim == 1 and not target.is_floating_point():
            return (output.argmax(dim=1) == target).sum()
        if target.shape == output.shape:  # class probabilities (label smoothing, mixup)
            return (output.argmax(dim=1) == target.argmax(dim=1)).sum()
    return None


class Meter:
    """Running loss and accuracy over batches: ``update(loss, output, target)`` per batch, ``result()``
    once at the end -> ``(mean loss, accuracy)``. Sums stay tensors until then (one sync per epoch)."""

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
    meter = Meter()
    with torch.no_grad():
        for batch in batches:
            x, y = split_batch(batch, role)
            x, y = x.to(device), y.to(device)
            output = model(x)
            meter.update(loss_fn(output, y), output, y)
    return meter.result()


def evaluate(model, data, *, loss_fn: Callable | None = None, device="auto") -> dict[str, float]:
    """Loss and accuracy of ``model`` on ``data`` (a DataLoader or an ``(x, y)`` pair), in eval mode.

    The model is moved to ``device`` (see :func:`fit`) and each batch with it.
    The modules' train/eval modes are restored afterwards. ``accuracy`` is NaN
    when it does not apply (e.g. a regression loss).
    """
    device = resolve_device(device, model)
    model.to(device)
    loss_fn = loss_fn if loss_fn is not None else _default_loss()
    batches = as_batches(data, role="data", batch_size=_EVAL_BATCH_SIZE, shuffle=False)
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


def _check_fit_arguments(epochs, optimizer, scheduler, scheduler_interval, val_data, grad_clip_norm, batch_size) -> int:
    """Raise on a bad argument; return the batch size to use for ``(x, y)`` pairs."""
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
    return batch_size


def _check_callbacks(callbacks: Iterable[Callback]) -> list[Callback]:
    callbacks = list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be dlcourse.train.Callback instances, got {type(callback).__name__}")
    return callbacks


def _train_epoch(model, batches, loss_fn, optimizer, device, parameters, *, grad_clip_norm=None,
                 step_scheduler=None) -> tuple[float, float]:
    """One pass over ``batches`` in train mode; the epoch's mean loss and accuracy.

    ``step_scheduler`` (a scheduler or ``None``) is stepped after every optimizer step.
    """
    model.train()
    meter = Meter()
    for batch in batches:
        x, y = split_batch(batch, "train_data")
        x, y = x.to(device), y.to(device)
        output = model(x)
        loss = loss_fn(output, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(parameters, grad_clip_norm)
        optimizer.step()
        if step_scheduler is not None:
            step_scheduler.step()
        meter.update(loss, output, y)
    return meter.result()


def _validate(model, batches, loss_fn, device) -> tuple[float, float]:
    """Loss and accuracy on ``batches`` in eval mode (the caller restores the modes)."""
    model.eval()
    return _run_eval(model, batches, loss_fn, device, "val_data")


def _step_epoch_scheduler(scheduler, logs: dict[str, float]) -> None:
    if _is_plateau(scheduler):
        scheduler.step(logs["val_loss"])
    else:
        scheduler.step()


def _run_epoch(trainer: Trainer, train_batches, val_batches, loss_fn, parameters, *, scheduler_interval,
               grad_clip_norm) -> dict[str, float]:
    """Train, validate and step a per-epoch scheduler: the epoch's logs."""
    model, optimizer, scheduler, device = trainer.model, trainer.optimizer, trainer.scheduler, trainer.device
    start = time.perf_counter()
    lr = float(optimizer.param_groups[0]["lr"])
    per_step = scheduler if scheduler_interval == "step" else None
    train_loss, train_accuracy = _train_epoch(
        model, train_batches, loss_fn, optimizer, device, parameters,
        grad_clip_norm=grad_clip_norm, step_scheduler=per_step,
    )
    logs = {"loss": train_loss, "accuracy": train_accuracy}
    if val_batches is not None:
        val_loss, val_accuracy = _validate(model, val_batches, loss_fn, device)
        logs.update(val_loss=val_loss, val_accuracy=val_accuracy)
    if scheduler is not None and scheduler_interval == "epoch":
        _step_epoch_scheduler(scheduler, logs)
    logs["lr"] = lr
    logs["epoch_time"] = time.perf_counter() - start
    return logs


def _format_postfix(logs: dict[str, float]) -> str:
    names = {"loss": "loss", "accuracy": "acc", "val_loss": "val_loss", "val_accuracy": "val_acc"}
    parts = [f"{short}={logs[key]:.4f}" for key, short in names.items() if key in logs and not math.isnan(logs[key])]
    parts.append(f"lr={logs['lr']:.3g}")
    return " ".join(parts)


class _Progress:
    """One tqdm bar on stdout, updated per epoch; does nothing when ``enabled`` is false."""

    def __init__(self, epochs: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=epochs, file=sys.stdout, unit="epoch", desc="fit", leave=True, ncols=110)

    def epoch_done(self, logs: dict[str, float]) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(_format_postfix(logs), refresh=False)
            self.bar.update(1)

    def stopped_early(self, epoch: int) -> None:
        if self.bar is not None:
            self.bar.set_description(f"fit (stopped early at epoch {epoch + 1})", refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
    device="auto",
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
        device: ``"auto"`` (CUDA, then MPS, then the CPU; see :func:`resolve_device`),
            ``"cpu"``, ``"cuda"``, ``"mps"``, a ``torch.device``, or ``None`` to keep the
            device the model's parameters are on. The model is moved there, and each batch.
        progress: one tqdm bar on stdout, updated per epoch; ``False`` prints nothing.
        tensorboard_dir: if set, write loss/accuracy/lr scalars and weight and
            gradient histograms per epoch there (a :class:`TensorBoard` callback).
        grad_clip_norm: if set, clip the global gradient norm to this before each step.
        batch_size: batch size for ``(x, y)`` pairs (default: the profile's, 128).
    """
    batch_size = _check_fit_arguments(
        epochs, optimizer, scheduler, scheduler_interval, val_data, grad_clip_norm, batch_size
    )
    callbacks = _check_callbacks(callbacks)
    if tensorboard_dir is not None:
        callbacks.insert(0, TensorBoard(tensorboard_dir))

    device = resolve_device(device, model)
    model.to(device)
    loss_fn = loss_fn if loss_fn is not None else _default_loss()
    train_batches = as_batches(train_data, role="train_data", batch_size=batch_size, shuffle=True)
    val_batches = (
        None
        if val_data is None
        else as_batches(val_data, role="val_data", batch_size=max(batch_size, _EVAL_BATCH_SIZE), shuffle=False)
    )

    history = History()
    history.params = {
        "epochs": epochs,
        "steps": len(train_batches) if hasattr(train_batches, "__len__") else None,
        "batch_size": getattr(train_batches, "batch_size", None),
        "optimizer": type(optimizer).__name__,
        "scheduler": None if scheduler is None else type(scheduler).__name__,
        "scheduler_interval": scheduler_interval,
        "grad_clip_norm": grad_clip_norm,
        "device": str(device),
    }
    trainer = Trainer(model, optimizer, scheduler, history, device)
    initial_modes = _module_modes(model)
    bar = _Progress(epochs, progress)
    parameters = [p for p in model.parameters() if p.requires_grad]
    logs: dict[str, float] = {}
    try:
        for callback in callbacks:
            callback.trainer = trainer
            callback.on_train_begin(trainer)
        for epoch in range(epochs):
            trainer.epoch = epoch
            logs = _run_epoch(trainer, train_batches, val_batches, loss_fn, parameters,
                              scheduler_interval=scheduler_interval, grad_clip_norm=grad_clip_norm)
            history._append(epoch, logs)
            for callback in callbacks:
                callback.on_epoch_end(epoch, dict(logs))
            bar.epoch_done(logs)
            if trainer.stop_training:
                history.stopped_epoch = epoch
                bar.stopped_early(epoch)
                break
        for callback in callbacks:
            callback.on_train_end(dict(logs))
    finally:
        _restore_modes(initial_modes)
        bar.close()
        for callback in callbacks:
            if isinstance(callback, TensorBoard):
                callback.close()
    return history
