"""dlcourse.train: fit/evaluate, History, callbacks, schedulers, TensorBoard, silence."""

import glob
import math
import os
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlcourse import profiles, train  # noqa: E402

KEYS = ["loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_time"]


def _problem(n=600, d=10, classes=3, seed=0):
    """A learnable problem: labels from a random linear map."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x @ torch.randn(d, classes, generator=g)).argmax(1)
    return x, y


def _mlp(d=10, classes=3, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, 16), torch.nn.ReLU(), torch.nn.Linear(16, classes))


def _scripted_val_loss(values):
    """A loss whose value during validation (no grad) follows `values`, one per epoch."""
    calls = {"val": 0}

    def loss_fn(output, target):
        if torch.is_grad_enabled():
            return torch.nn.functional.cross_entropy(output, target)
        value = values[calls["val"]]
        calls["val"] += 1
        return output.sum() * 0 + value

    return loss_fn


class _RecordWeights(train.Callback):
    def on_train_begin(self, trainer):
        super().on_train_begin(trainer)
        self.states = []

    def on_epoch_end(self, epoch, logs):
        self.states.append({k: v.clone() for k, v in self.trainer.model.state_dict().items()})


def _same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------- fit / history


def test_fit_history_keys_and_lengths():
    x, y = _problem()
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    h = train.fit(model, (x[:500], y[:500]), val_data=(x[500:], y[500:]), epochs=3, optimizer=opt, progress=False)
    assert isinstance(h, train.History)
    assert list(h.history) == KEYS
    assert all(len(v) == 3 for v in h.history.values())
    assert h.epoch == [0, 1, 2]
    assert h.stopped_epoch is None
    assert h.params["epochs"] == 3 and h.params["steps"] == math.ceil(500 / 128)
    assert h.history["lr"] == [0.1, 0.1, 0.1]
    assert all(t > 0 for t in h.history["epoch_time"])
    assert all(isinstance(v, float) for values in h.history.values() for v in values)


def test_fit_without_validation_has_no_val_keys():
    x, y = _problem()
    model = _mlp()
    h = train.fit(model, (x, y), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert list(h.history) == ["loss", "accuracy", "lr", "epoch_time"]


def test_loss_decreases_on_a_learnable_problem():
    profiles.seed_everything(0)
    x, y = _problem(n=1000)
    model = _mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    h = train.fit(model, (x[:800], y[:800]), val_data=(x[800:], y[800:]), epochs=8, optimizer=opt, progress=False)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    assert h.history["val_accuracy"][-1] > 0.85
    result = train.evaluate(model, (x[800:], y[800:]))
    assert set(result) == {"loss", "accuracy"}
    assert result["loss"] == pytest.approx(h.history["val_loss"][-1], rel=1e-5)
    assert result["accuracy"] == pytest.approx(h.history["val_accuracy"][-1])


def test_evaluate_matches_a_manual_computation():
    x, y = _problem(n=300)
    model = _mlp()
    result = train.evaluate(model, (x.numpy(), y.numpy()))  # arrays work too
    with torch.no_grad():
        logits = model(x)
    assert result["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert result["accuracy"] == pytest.approx((logits.argmax(1) == y).float().mean().item())


def test_fit_accepts_a_dataloader_and_numpy_float64():
    x, y = _problem(n=256)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64, shuffle=True)
    model = _mlp()
    h = train.fit(model, loader, val_data=(x.double().numpy(), y.numpy()), epochs=2,
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert h.params["steps"] == 4 and len(h.history["val_loss"]) == 2


def test_fit_is_reproducible_with_seed_everything():
    x, y = _problem()
    runs = []
    for _ in range(2):
        profiles.seed_everything(3)
        model = _mlp(seed=3)
        h = train.fit(model, (x, y), epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
        runs.append(h.history["loss"])
    assert runs[0] == runs[1]


def test_accuracy_with_probability_targets_and_nan_for_regression():
    x, y = _problem(n=200)
    soft = torch.nn.functional.one_hot(y, 3).float()
    model = _mlp()
    result = train.evaluate(model, (x, soft))
    assert 0 <= result["accuracy"] <= 1
    regression = torch.nn.Linear(10, 1)
    result = train.evaluate(regression, (x, torch.randn(200, 1)), loss_fn=torch.nn.MSELoss())
    assert math.isnan(result["accuracy"]) and result["loss"] > 0


class _ModeSpy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(10, 3)
        self.dropout = torch.nn.Dropout(0.5)
        self.seen = []

    def forward(self, x):
        self.seen.append((torch.is_grad_enabled(), self.training, self.dropout.training))
        return self.linear(self.dropout(x))


def test_train_mode_in_training_eval_mode_in_validation_and_modes_restored():
    x, y = _problem(n=256)
    model = _ModeSpy()
    model.eval()
    model.dropout.train()  # mixed modes must come back exactly
    train.fit(model, (x, y), val_data=(x, y), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
              progress=False, batch_size=128)
    assert model.seen[:2] == [(True, True, True), (True, True, True)]
    assert model.seen[2:] == [(False, False, False)]
    assert model.training is False and model.dropout.training is True
    model.seen.clear()
    model.train()
    train.evaluate(model, (x, y))
    assert model.seen == [(False, False, False)]
    assert model.training and model.dropout.training


def test_device_none_means_the_models_device():
    x, y = _problem(n=64)
    model = _mlp()
    h = train.fit(model, (x, y), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert h.params["device"] == "cpu"


def test_grad_clip_norm_clips_before_each_step():
    class RecordingSGD(torch.optim.SGD):
        norms = []

        def step(self, closure=None):
            grads = [p.grad for group in self.param_groups for p in group["params"] if p.grad is not None]
            self.norms.append(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads])).item())
            return super().step(closure)

    x, y = _problem(n=256)
    model = _mlp()
    opt = RecordingSGD(model.parameters(), lr=0.1)
    train.fit(model, (x * 100, y), epochs=1, optimizer=opt, grad_clip_norm=0.5, progress=False)
    assert len(opt.norms) == 2 and max(opt.norms) <= 0.5 + 1e-5
    RecordingSGD.norms = []
    opt = RecordingSGD(model.parameters(), lr=0.1)
    train.fit(model, (x * 100, y), epochs=1, optimizer=opt, progress=False)
    assert max(opt.norms) > 0.5  # without clipping the same data gives larger gradients


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(epochs=0), ValueError),
        (dict(epochs=1, scheduler_interval="batch"), ValueError),
        (dict(epochs=1, grad_clip_norm=0), ValueError),
        (dict(epochs=1, callbacks=[object()]), TypeError),
        (dict(epochs=1, optimizer="adam"), TypeError),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error):
    x, y = _problem(n=32)
    model = _mlp()
    kwargs = {"optimizer": torch.optim.SGD(model.parameters(), lr=0.1), **kwargs}
    with pytest.raises(error):
        train.fit(model, (x, y), progress=False, **kwargs)


def test_fit_rejects_bad_data():
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = _problem(n=32)
    with pytest.raises(ValueError, match="32 examples but y has 31"):
        train.fit(model, (x, y[:31]), epochs=1, optimizer=opt, progress=False)
    with pytest.raises(ValueError, match="pair"):
        train.fit(model, (x, y, y), epochs=1, optimizer=opt, progress=False)
    with pytest.raises(TypeError):
        train.fit(model, None, epochs=1, optimizer=opt, progress=False)


# ----------------------------------------------------------------- early stopping


def test_early_stopping_stops_at_the_right_epoch_and_restores_best_weights():
    # best at epoch 1; no improvement at epochs 2, 3 -> patience 2 stops after epoch 3
    values = [1.0, 0.5, 0.6, 0.55, 0.1, 0.1]
    recorder = _RecordWeights()
    stopper = train.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    x, y = _problem(n=256)
    model = _mlp()
    h = train.fit(model, (x, y), val_data=(x, y), epochs=6, optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
                  loss_fn=_scripted_val_loss(values), callbacks=[recorder, stopper], progress=False)
    assert h.epoch == [0, 1, 2, 3]
    assert h.stopped_epoch == 3 and stopper.stopped_epoch == 3
    assert h.history["val_loss"] == pytest.approx(values[:4])
    assert stopper.best == pytest.approx(0.5) and stopper.best_epoch == 1
    assert _same_state(model.state_dict(), recorder.states[1])
    assert not _same_state(model.state_dict(), recorder.states[3])


def test_early_stopping_without_restore_keeps_last_weights():
    values = [1.0, 0.5, 0.6, 0.55]
    recorder = _RecordWeights()
    x, y = _problem(n=256)
    model = _mlp()
    train.fit(model, (x, y), val_data=(x, y), epochs=4, optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
              loss_fn=_scripted_val_loss(values), callbacks=[recorder, train.EarlyStopping(patience=2)], progress=False)
    assert _same_state(model.state_dict(), recorder.states[3])


def _drive(callback, values, monitor):
    """Feed scripted values to a callback; return the epoch index at which it stopped training."""
    trainer = types.SimpleNamespace(stop_training=False, model=torch.nn.Linear(1, 1))
    callback.on_train_begin(trainer)
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {monitor: value})
        if trainer.stop_training:
            return epoch
    return None


class _KerasStub:
    stop_training = False


@pytest.mark.parametrize(
    "values, kwargs",
    [
        ([1.0, 0.9, 0.95, 0.92, 0.91, 0.5], dict(patience=2)),
        ([1.0, 0.99, 0.98, 0.97, 0.96, 0.95], dict(patience=2, min_delta=0.05)),
        ([0.5, 0.6, 0.6, 0.59, 0.7, 0.7, 0.7], dict(patience=2, monitor="val_accuracy")),
        ([0.5, 0.6, 0.6, 0.59, 0.7, 0.7, 0.7], dict(patience=1, monitor="val_accuracy", mode="max")),
        ([1.0, 1.0, 1.0, 1.0], dict(patience=0)),
        ([3.0, 2.0, 1.0, 0.5], dict(patience=1, mode="max")),
    ],
)
def test_early_stopping_matches_keras(values, kwargs):
    from dlcourse import frameworks

    keras = frameworks.import_keras()
    monitor = kwargs.get("monitor", "val_loss")
    ours = _drive(train.EarlyStopping(**kwargs), values, monitor)
    reference_kwargs = dict(kwargs)
    if "accuracy" in monitor:  # Keras infers the direction from a compiled model's metrics; we have none
        reference_kwargs.setdefault("mode", "max")
    reference = keras.callbacks.EarlyStopping(**reference_kwargs)
    stub = _KerasStub()
    reference.set_model(stub)
    reference.on_train_begin()
    expected = None
    for epoch, value in enumerate(values):
        reference.on_epoch_end(epoch, {monitor: value})
        if stub.stop_training:
            expected = epoch
            break
    assert ours == expected


def test_early_stopping_errors_are_clear():
    with pytest.raises(ValueError, match="mode"):
        train.EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="mode='min' or mode='max'"):
        train.EarlyStopping(monitor="val_f7")
    x, y = _problem(n=64)
    model = _mlp()
    with pytest.raises(ValueError, match="val_loss.*pass val_data"):
        train.fit(model, (x, y), epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                  callbacks=[train.EarlyStopping()], progress=False)


# ----------------------------------------------------------------- checkpoint


def test_model_checkpoint_holds_the_best_weights(tmp_path):
    values = [1.0, 0.4, 0.7, 0.5]
    recorder = _RecordWeights()
    path = tmp_path / "nested" / "best.pt"
    checkpoint = train.ModelCheckpoint(path)
    x, y = _problem(n=256)
    model = _mlp()
    train.fit(model, (x, y), val_data=(x, y), epochs=4, optimizer=torch.optim.SGD(model.parameters(), lr=0.5),
              loss_fn=_scripted_val_loss(values), callbacks=[recorder, checkpoint], progress=False)
    assert checkpoint.best_epoch == 1
    saved = torch.load(path)
    assert _same_state(saved, recorder.states[1])
    assert not _same_state(saved, model.state_dict())
    assert os.listdir(path.parent) == ["best.pt"]  # no temporary files left behind


def test_model_checkpoint_max_mode_for_accuracy(tmp_path):
    checkpoint = train.ModelCheckpoint(tmp_path / "c.pt", monitor="val_accuracy")
    assert checkpoint.mode == "max"
    trainer = types.SimpleNamespace(stop_training=False, model=torch.nn.Linear(1, 1))
    checkpoint.on_train_begin(trainer)
    for epoch, value in enumerate([0.5, 0.8, 0.7]):
        checkpoint.on_epoch_end(epoch, {"val_accuracy": value})
    assert checkpoint.best_epoch == 1 and checkpoint.best == 0.8


# ----------------------------------------------------------------- schedulers


class _CountingStepLR(torch.optim.lr_scheduler.StepLR):
    def __init__(self, *args, **kwargs):
        self.calls = 0
        super().__init__(*args, **kwargs)

    def step(self, *args, **kwargs):
        self.calls += 1
        return super().step(*args, **kwargs)


@pytest.mark.parametrize("interval, per_epoch", [("epoch", 1), ("step", 3)])
def test_scheduler_steps_per_epoch_or_per_step(interval, per_epoch):
    x, y = _problem(n=300)  # 3 batches of 128
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = _CountingStepLR(opt, step_size=1, gamma=0.5)
    calls_at_start = scheduler.calls  # the constructor steps once
    h = train.fit(model, (x, y), epochs=4, optimizer=opt, scheduler=scheduler, scheduler_interval=interval,
                  progress=False)
    assert scheduler.calls - calls_at_start == 4 * per_epoch
    assert h.history["lr"] == pytest.approx([0.5 ** (per_epoch * e) for e in range(4)])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 ** (4 * per_epoch))


def test_reduce_lr_on_plateau_is_stepped_with_val_loss():
    seen = []

    class Spy(torch.optim.lr_scheduler.ReduceLROnPlateau):
        def step(self, metrics, *args, **kwargs):
            seen.append(float(metrics))
            return super().step(metrics, *args, **kwargs)

    values = [1.0, 0.9, 0.9, 0.9, 0.9]
    x, y = _problem(n=128)
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    h = train.fit(model, (x, y), val_data=(x, y), epochs=5, optimizer=opt, loss_fn=_scripted_val_loss(values),
                  scheduler=Spy(opt, factor=0.1, patience=1), progress=False)
    assert seen == pytest.approx(values)
    # best 0.9 at epoch 1; epochs 2 and 3 are bad, 2 > patience=1 -> reduced for epoch 4
    assert h.history["lr"] == pytest.approx([1.0, 1.0, 1.0, 1.0, 0.1])


def test_reduce_lr_on_plateau_needs_val_data_and_epoch_interval():
    x, y = _problem(n=64)
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt)
    with pytest.raises(ValueError, match="val_data"):
        train.fit(model, (x, y), epochs=1, optimizer=opt, scheduler=plateau, progress=False)
    with pytest.raises(ValueError, match="interval"):
        train.fit(model, (x, y), val_data=(x, y), epochs=1, optimizer=opt, scheduler=plateau,
                  scheduler_interval="step", progress=False)


# ----------------------------------------------------------------- tensorboard and output


def test_tensorboard_event_files_hold_the_scalars_and_histograms(tmp_path):
    x, y = _problem(n=256)
    model = _mlp()
    train.fit(model, (x, y), val_data=(x, y), epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
              tensorboard_dir=tmp_path, progress=False)
    files = glob.glob(str(tmp_path / "events.out.tfevents.*"))
    assert len(files) == 1
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0, "histograms": 0}).Reload()
    tags = events.Tags()
    assert {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr"} <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2]
    assert "weights/0.weight" in tags["histograms"] and "gradients/0.weight" in tags["histograms"]


def test_tensorboard_callback_writes_the_same_and_closes_its_writer_on_error(tmp_path):
    x, y = _problem(n=256)
    model = _mlp()
    board = train.TensorBoard(tmp_path / "ok")
    train.fit(model, (x, y), epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
              callbacks=[board], progress=False)
    assert board.writer is None and len(glob.glob(str(tmp_path / "ok" / "events.out.tfevents.*"))) == 1

    class Fails(train.Callback):
        def on_epoch_end(self, epoch, logs):
            raise RuntimeError("boom")

    board = train.TensorBoard(tmp_path / "fails")
    with pytest.raises(RuntimeError, match="boom"):
        train.fit(model, (x, y), epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                  callbacks=[board, Fails()], progress=False)
    assert board.writer is None


def test_callbacks_live_in_their_own_module_and_train_re_exports_them():
    from dlcourse import callbacks

    for name in callbacks.__all__:
        assert getattr(train, name) is getattr(callbacks, name)
        assert name in train.__all__


def test_progress_bar_goes_to_stdout_and_nothing_to_stderr(capfd):
    x, y = _problem(n=256)
    model = _mlp()
    train.fit(model, (x, y), val_data=(x, y), epochs=3, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    out, err = capfd.readouterr()
    assert err == ""
    assert "fit" in out and "3/3" in out and "val_loss=" in out
    assert out.count("\n") <= 2  # one bar, not a wall of lines


def test_progress_false_prints_nothing(capfd):
    x, y = _problem(n=256)
    model = _mlp()
    train.fit(model, (x, y), val_data=(x, y), epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
              progress=False)
    train.evaluate(model, (x, y))
    assert capfd.readouterr() == ("", "")


def test_early_stop_is_shown_on_the_bar(capfd):
    x, y = _problem(n=128)
    model = _mlp()
    train.fit(model, (x, y), val_data=(x, y), epochs=5, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
              loss_fn=_scripted_val_loss([1.0, 1.0, 1.0, 1.0, 1.0]), callbacks=[train.EarlyStopping(patience=1)])
    out, err = capfd.readouterr()
    assert "stopped early at epoch 2" in out and err == ""


def test_meter_weights_batches_by_size_and_says_when_accuracy_does_not_apply():
    meter = train.Meter()
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    meter.update(torch.tensor(1.0), logits[:2], torch.tensor([0, 0]))
    meter.update(torch.tensor(4.0), logits[2:], torch.tensor([0]))
    assert meter.result() == pytest.approx(((1.0 * 2 + 4.0) / 3, 2 / 3))
    regression = train.Meter()
    regression.update(torch.tensor(0.5), torch.zeros(4, 1), torch.zeros(4, 1))
    loss, accuracy = regression.result()
    assert loss == 0.5 and math.isnan(accuracy)
    with pytest.raises(ValueError, match="no batches"):
        train.Meter().result()
