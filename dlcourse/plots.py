"""Plots for the course: training curves with seed bands, images, histograms, paths.

Every function draws on a Matplotlib Axes (or Figure, for multi-panel plots)
and returns it; none calls ``plt.show()`` (Jupyter shows the figure at the end
of the cell). Axes are labelled in words ("epoch", "validation accuracy").

Histories
    Every function that takes a training history accepts a Keras ``History``
    (the object ``model.fit`` returns), a ``dlcourse.train.History``, a plain
    dict of lists such as ``{"loss": [...], "val_loss": [...]}`` or an
    ``experiments.run`` result ``{"history": {...}, ...}``; see
    :func:`as_history`.

Seed bands (:func:`plot_runs`, :func:`plot_gap`)
    The line is the mean over seeds and the shaded band is mean ± one standard
    deviation (the sample std, ``ddof=1``: the seeds are a sample, as in
    ``experiments.summarize``), computed at each epoch over the seeds that
    reached that epoch; where only one seed is left the band has no width. When runs have different
    lengths (early stopping), the part of the curve where every seed is present
    is drawn solid; beyond the shortest run the curve continues dashed with a
    lighter band, averaged over the seeds still running. The legend gives the
    number of seeds and says when the dashed part exists. With one seed there
    is no band.

Style
    Importing this module changes nothing. The first plot applies a light
    seaborn theme once (:func:`set_style`); call ``set_style(None)`` first to
    keep your own Matplotlib settings.

Matplotlib and seaborn are imported inside the functions, so ``import
dlcourse`` stays fast; torch and TensorFlow are never imported (their tensors
are accepted by duck typing).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = [
    "MissingMetricError",
    "as_history",
    "image_grid",
    "metric_label",
    "plot_gap",
    "plot_histograms",
    "plot_history",
    "plot_layer_stats",
    "plot_optimizer_paths",
    "plot_runs",
    "plot_schedules",
    "set_style",
]

_style_applied = False


class MissingMetricError(KeyError, ValueError):
    """A metric asked for is not in a history (both a ``KeyError`` and a ``ValueError``)."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------- style


def set_style(style: str | None = "whitegrid", *, context: str = "notebook", font_scale: float = 1.0) -> None:
    """Apply the course's seaborn theme (once per session is enough).

    Called automatically by the first plot. ``set_style(None)`` turns that off
    and leaves Matplotlib's settings as they are.
    """
    global _style_applied
    _style_applied = True
    if style is None:
        return
    import seaborn as sns

    sns.set_theme(context=context, style=style, palette="deep", font_scale=font_scale)


def _pyplot():
    """Import pyplot lazily and apply the theme on first use."""
    import matplotlib.pyplot as plt

    if not _style_applied:
        set_style()
    return plt


def _new_axes(ax, figsize=(6.4, 4.2)):
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _colors(n: int):
    import seaborn as sns

    return sns.color_palette("deep" if n <= 10 else "husl", n)


def _integer_xticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _finish(ax, *, title=None, legend=True, legend_title=None) -> None:
    if title is not None:
        ax.set_title(title)
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(handles, labels, title=legend_title)


# --------------------------------------------------------------------------- inputs


def _to_numpy(x) -> np.ndarray:
    """NumPy view of an array-like, a torch tensor or a TensorFlow tensor."""
    if hasattr(x, "detach"):  # torch
        x = x.detach()
        if hasattr(x, "cpu"):
            x = x.cpu()
        try:
            return np.asarray(x.numpy())
        except TypeError:  # dtypes NumPy lacks, e.g. bfloat16
            return np.asarray(x.float().numpy())
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):  # TensorFlow eager tensor
        return np.asarray(x.numpy())
    return np.asarray(x)


def _to_float(value, where: str) -> float:
    if value is None:
        return math.nan
    try:
        return float(_to_numpy(value))
    except (TypeError, ValueError):
        raise TypeError(f"{where}: expected a number, got {type(value).__name__} {value!r:.60}") from None


_HISTORY_HELP = (
    "Pass a Keras History (what model.fit returns), a dlcourse.train.History, "
    "or a dict of lists such as {'loss': [...], 'val_loss': [...]}"
)


def as_history(obj) -> dict[str, list]:
    """The metrics of a training history as a new dict ``{name: [float per epoch]}``.

    Accepts a Keras ``History``, a ``dlcourse.train.History`` (anything with a
    ``.history`` dict), a dict of lists, or an ``experiments.run`` result (a
    dict holding the history under ``"history"``). Values may be lists,
    tuples, NumPy arrays or tensors; ``None`` becomes NaN. Anything else
    raises ``TypeError`` saying what is accepted.
    """
    mapping = getattr(obj, "history", None) if not isinstance(obj, Mapping) else obj
    if isinstance(mapping, Mapping) and isinstance(mapping.get("history"), Mapping):
        mapping = mapping["history"]  # an experiments.run result
    if not isinstance(mapping, Mapping):
        what = type(obj).__name__
        if mapping is not None:
            what += f" whose .history is a {type(mapping).__name__}"
        raise TypeError(f"as_history: cannot read a training history from a {what}. {_HISTORY_HELP}.")
    history: dict[str, list] = {}
    for key, values in mapping.items():
        if not isinstance(key, str):
            raise TypeError(f"as_history: metric names must be strings, got {key!r}. {_HISTORY_HELP}.")
        if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
            raise TypeError(
                f"as_history: {key!r} must be a list of numbers (one per epoch), "
                f"got {type(values).__name__} {values!r:.60}. {_HISTORY_HELP}."
            )
        if hasattr(values, "shape"):  # NumPy array or tensor
            array = _to_numpy(values)
            if array.ndim != 1:
                raise TypeError(f"as_history: {key!r} must be one-dimensional (one number per epoch), got shape {array.shape}")
            values = array.tolist()
        history[key] = [_to_float(v, f"as_history: {key!r}") for v in values]
    return history


_WORDS = {
    "loss": "loss",
    "acc": "accuracy",
    "accuracy": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "categorical_accuracy": "accuracy",
    "binary_accuracy": "accuracy",
    "lr": "learning rate",
    "learning_rate": "learning rate",
    "epoch_time": "epoch time (s)",
    "mse": "mean squared error",
    "mae": "mean absolute error",
}
_UNSPLIT = {"lr", "learning_rate", "epoch_time"}  # not measured on training vs validation data


def metric_label(name: str, *, split: bool = True) -> str:
    """A history key in words: ``"val_accuracy"`` -> ``"validation accuracy"``.

    With ``split=False`` the "training"/"validation" prefix is left out.
    """
    base, prefix = name, "training "
    if name.startswith("val_"):
        base, prefix = name[4:], "validation "
    words = _WORDS.get(base, base.replace("_", " "))
    if not split or base in _UNSPLIT:
        return words
    return prefix + words


def _missing(metric: str, history: Mapping, where: str = "") -> MissingMetricError:
    available = ", ".join(repr(k) for k in history) or "none"
    return MissingMetricError(f"{where}metric {metric!r} is not in the history; available metrics: {available}")


def _series(history: Mapping, metric: str, where: str = "") -> np.ndarray:
    if metric not in history:
        raise _missing(metric, history, where)
    values = np.asarray(history[metric], dtype=float)
    if values.size == 0:
        raise ValueError(f"{where}metric {metric!r} has no values (zero epochs)")
    return values


def _check_label_dict(obj, what: str, example: str) -> Mapping:
    if not isinstance(obj, Mapping):
        raise TypeError(f"expected {what} as a dict {example}, got {type(obj).__name__}")
    if not obj:
        raise ValueError(f"expected at least one entry in {what} {example}, got an empty dict")
    return obj


def _is_history_like(obj) -> bool:
    return isinstance(obj, Mapping) or isinstance(getattr(obj, "history", None), Mapping)


def _runs_histories(runs) -> dict[str, list[dict[str, list]]]:
    """``{label: [history per seed]}`` with every history converted by :func:`as_history`."""
    example = "{label: [history per seed]}"
    _check_label_dict(runs, "runs", example)
    first = next(iter(runs.values()))
    if not _is_history_like(first) and not (
        isinstance(first, Sequence) and not isinstance(first, str) and first and _is_history_like(first[0])
    ):
        raise TypeError(
            f"expected runs as {example}; this looks like a single history. "
            "Wrap it, e.g. {'my run': [history]}"
        )
    out = {}
    for label, seeds in runs.items():
        if _is_history_like(seeds):
            seeds = [seeds]
        if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or len(seeds) == 0:
            raise TypeError(f"runs[{label!r}] must be a non-empty list of histories (one per seed), got {seeds!r:.80}")
        out[str(label)] = [as_history(h) for h in seeds]
    return out


# --------------------------------------------------------------------------- curves


def plot_history(history, metrics=("loss", "accuracy"), *, title=None, axes=None):
    """Training vs validation curves of one run, one panel per metric.

    ``history``: see :func:`as_history`. ``metrics``: a name or names such as
    ``"loss"``; each panel shows ``metric`` (training) and ``val_<metric>``
    (validation) when present (a ``val_`` prefix is ignored). ``axes``:
    optional Axes to draw on, one per metric. Returns the Figure.
    """
    hist = as_history(history)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("plot_history: give at least one metric, e.g. metrics=('loss', 'accuracy')")
    plt = _pyplot()
    if axes is None:
        fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.8), layout="constrained", squeeze=False)
        axes = axes[0]
    else:
        axes = list(np.atleast_1d(axes))
        if len(axes) != len(metrics):
            raise ValueError(f"plot_history: got {len(axes)} axes for {len(metrics)} metrics")
        fig = axes[0].figure
    colors = _colors(2)
    for ax, metric in zip(axes, metrics):
        base = metric[4:] if metric.startswith("val_") else metric
        present = [(k, lab, c) for k, lab, c in ((base, "training", colors[0]), ("val_" + base, "validation", colors[1])) if k in hist]
        if not present:
            raise _missing(metric, hist, "plot_history: ")
        for key, label, color in present:
            values = _series(hist, key, "plot_history: ")
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, label=label, color=color, marker="o" if len(values) <= 2 else None)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric_label(base, split=False))
        _integer_xticks(ax)
        _finish(ax, legend=len(present) > 1)
    if title is not None:
        fig.suptitle(title)
    return fig


def _band_stats(series: list[np.ndarray]):
    """Per-epoch mean, sample std (ddof=1; 0 where one run is left) and count over the runs that reached each epoch."""
    length = max(len(s) for s in series)
    padded = np.full((len(series), length), np.nan)
    for i, s in enumerate(series):
        padded[i, : len(s)] = s
    present = np.arange(length)[None, :] < np.array([len(s) for s in series])[:, None]
    count = present.sum(axis=0)
    mean = np.array([padded[present[:, t], t].mean() for t in range(length)])
    std = np.array([padded[present[:, t], t].std(ddof=1) if count[t] > 1 else 0.0 for t in range(length)])
    return mean, std, count


def _plot_band(ax, series: list[np.ndarray], label: str, color) -> bool:
    """Mean line with a ± std band; dashed (lighter band) where some runs have ended.

    Returns whether a band was drawn (more than one run).
    """
    mean, std, count = _band_stats(series)
    epochs = np.arange(1, len(mean) + 1)
    n = len(series)
    full = int(np.sum(count == n))  # count never increases, so the first `full` epochs have every run
    legend = f"{label} ({n} seed{'s' if n != 1 else ''}"
    legend += "; dashed: fewer seeds)" if full < len(mean) else ")"
    few = len(mean) <= 2
    ax.plot(epochs[:full], mean[:full], color=color, label=legend, marker="o" if few else None)
    if n > 1:
        ax.fill_between(epochs[:full], (mean - std)[:full], (mean + std)[:full], color=color, alpha=0.25, linewidth=0)
    if full < len(mean):
        tail = slice(full - 1, None)  # start at the last full epoch so the curve is continuous
        ax.plot(epochs[tail], mean[tail], color=color, linestyle="--", label="_nolegend_")
        ax.fill_between(epochs[tail], (mean - std)[tail], (mean + std)[tail], color=color, alpha=0.1, linewidth=0)
    return n > 1


_BAND_LEGEND = "mean ± std over seeds"


def plot_runs(runs, metric="val_accuracy", *, ax=None, title=None):
    """One curve per label: mean ± std over seeds of ``metric`` per epoch.

    ``runs``: ``{label: [history per seed]}`` (a single history per label is
    accepted too). Runs of different lengths are handled as described in the
    module docstring (solid where all seeds exist, dashed beyond). Returns the
    Axes.
    """
    all_runs = _runs_histories(runs)
    ax = _new_axes(ax)
    banded = False
    for (label, histories), color in zip(all_runs.items(), _colors(len(all_runs))):
        series = [_series(h, metric, f"plot_runs: {label!r} seed #{i}: ") for i, h in enumerate(histories)]
        banded |= _plot_band(ax, series, label, color)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric_label(metric))
    _integer_xticks(ax)
    _finish(ax, title=title, legend_title=_BAND_LEGEND if banded else None)
    return ax


def plot_gap(runs, metric="accuracy", *, ax=None, title=None):
    """Generalization gap per epoch: training minus validation ``metric``, mean ± std over seeds.

    ``runs`` as in :func:`plot_runs`; each history needs ``metric`` and
    ``val_<metric>``. A dotted line marks zero gap. Returns the Axes.
    """
    base = metric[4:] if metric.startswith("val_") else metric
    all_runs = _runs_histories(runs)
    ax = _new_axes(ax)
    banded = False
    for (label, histories), color in zip(all_runs.items(), _colors(len(all_runs))):
        gaps = []
        for i, h in enumerate(histories):
            where = f"plot_gap: {label!r} seed #{i}: "
            train, val = _series(h, base, where), _series(h, "val_" + base, where)
            if len(train) != len(val):
                raise ValueError(f"{where}{base!r} has {len(train)} epochs but 'val_{base}' has {len(val)}")
            gaps.append(train - val)
        banded |= _plot_band(ax, gaps, label, color)
    ax.axhline(0.0, color="0.3", linestyle=":", linewidth=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{metric_label(base, split=False)} gap (training − validation)")
    _integer_xticks(ax)
    _finish(ax, title=title, legend_title=_BAND_LEGEND if banded else None)
    return ax


# --------------------------------------------------------------------------- images

_GRID_SHAPES = "(N, H, W), (N, H, W, 1), (N, 1, H, W), (N, H, W, 3) or (N, 3, H, W)"


def _images_hwc(images) -> np.ndarray:
    """Images as (N, H, W) or (N, H, W, 3)."""
    x = _to_numpy(images)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 4:
        if x.shape[-1] in (1, 3):
            pass
        elif x.shape[1] in (1, 3):
            x = np.moveaxis(x, 1, -1)
        else:
            raise ValueError(f"image_grid: images must have shape {_GRID_SHAPES}; got {x.shape}")
        if x.shape[-1] == 1:
            x = x[..., 0]
    elif x.ndim != 3:
        raise ValueError(f"image_grid: images must have shape {_GRID_SHAPES}; got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("image_grid: no images to show (N = 0)")
    if x.dtype == bool:
        x = x.astype(np.float32)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"image_grid: images must be numbers (uint8 or float), got dtype {x.dtype}")
    return x


def _display_range(x: np.ndarray):
    """vmin, vmax shared by every image so brightness compares across the grid."""
    if np.issubdtype(x.dtype, np.integer):
        return 0.0, 255.0
    lo, hi = float(np.nanmin(x)), float(np.nanmax(x))
    if lo >= 0.0 and hi <= 1.0:
        return 0.0, 1.0
    return lo, (hi if hi > lo else lo + 1.0)  # e.g. standardized images: use the data's range


def _class_name(index: int, class_names) -> str:
    if class_names is None:
        return str(index)
    if not 0 <= index < len(class_names):
        raise ValueError(f"image_grid: label {index} is outside class_names (which has {len(class_names)} names)")
    return str(class_names[index])


def _label_text(label, class_names) -> str:
    label = _to_numpy(label)
    if label.ndim == 0:
        return _class_name(int(label), class_names)
    # A row of class probabilities (one-hot, or mixed by mixup/cutmix): the two largest.
    order = np.argsort(label)[::-1]
    parts = [f"{label[k]:.2f} {_class_name(int(k), class_names)}" for k in order[:2] if label[k] > 0.005]
    if len(parts) == 1 and label[order[0]] > 0.995:
        return _class_name(int(order[0]), class_names)
    return "\n".join(parts)


def _as_class_indices(values, name: str, n: int) -> np.ndarray:
    v = _to_numpy(values)
    if v.ndim == 2:
        v = v.argmax(axis=1)
    if v.ndim != 1 or len(v) < n:
        raise ValueError(f"image_grid: {name} must be 1-D (or (N, classes)) with at least {n} entries, got shape {v.shape}")
    return v.astype(int)


def image_grid(images, labels=None, *, class_names=None, n=25, ncols=5, title=None, predictions=None):
    """The first ``n`` images in a grid with their labels as titles. Returns the Figure.

    ``images``: shape (N, H, W), (N, H, W, 1), (N, 1, H, W), (N, H, W, 3) or
    (N, 3, H, W); uint8 (shown on 0..255) or float (shown on 0..1 when inside
    it, otherwise on the images' common min..max). ``labels``: class indices,
    or rows of class probabilities (mixup/cutmix targets show their two
    largest weights). ``class_names``: names for the indices.
    ``predictions``: predicted classes (or logits/probabilities); each image
    is titled with its prediction, in red with the true label when wrong.
    """
    plt = _pyplot()
    x = _images_hwc(images)
    if not isinstance(n, (int, np.integer)) or n < 1 or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"image_grid: n and ncols must be positive integers, got n={n!r}, ncols={ncols!r}")
    count = min(int(n), len(x))
    if labels is not None and len(_to_numpy(labels)) < count:
        raise ValueError(f"image_grid: {count} images shown but only {len(_to_numpy(labels))} labels given")
    labels_np = None if labels is None else _to_numpy(labels)
    preds = None if predictions is None else _as_class_indices(predictions, "predictions", count)
    if preds is not None and labels is None:
        raise ValueError("image_grid: predictions need the true labels too (labels=...) to mark the wrong ones")
    true_classes = None if preds is None else _as_class_indices(labels_np[:count], "labels", count)
    vmin, vmax = _display_range(x[:count])
    cols = min(int(ncols), count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.65 * rows + (0.4 if title else 0)),
                             layout="constrained", squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= count:
            continue
        img = x[i]
        if img.ndim == 3:  # RGB: imshow has no vmin/vmax for colour, so scale to 0..1 here
            ax.imshow(np.clip((img.astype(np.float64) - vmin) / (vmax - vmin), 0.0, 1.0))
        else:
            ax.imshow(img, cmap="gray", vmin=vmin, vmax=vmax)
        if labels_np is None:
            continue
        text, color = _label_text(labels_np[i], class_names), None
        if preds is not None:
            true = true_classes[i]
            predicted = _class_name(int(preds[i]), class_names)
            if preds[i] == true:
                text = predicted
            else:
                text, color = f"{predicted}\n(true: {_class_name(int(true), class_names)})", "red"
        ax.set_title(text, fontsize=8, **({"color": color} if color else {}))
    if title is not None:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- distributions


def plot_histograms(arrays, *, bins=50, ax=None, xlabel="value", log=False, density=False, title=None):
    """Overlaid, semi-transparent histograms of several arrays on shared bins.

    ``arrays``: ``{label: array or tensor}`` (flattened). Non-finite values are
    left out and counted in the legend. ``log``: logarithmic y axis;
    ``density``: normalize each histogram to area 1 (compares arrays of
    different sizes). Returns the Axes.
    """
    _check_label_dict(arrays, "arrays", "{label: array}")
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"plot_histograms: bins must be a positive integer, got {bins!r}")
    data = {}
    for label, arr in arrays.items():
        values = _to_numpy(arr).astype(np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError(f"plot_histograms: array {label!r} is empty")
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            raise ValueError(f"plot_histograms: array {label!r} has no finite values (all NaN/inf)")
        data[str(label)] = (finite, values.size - finite.size)
    lo = min(v.min() for v, _ in data.values())
    hi = max(v.max() for v, _ in data.values())
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, int(bins) + 1)  # shared bins keep the histograms comparable
    ax = _new_axes(ax)
    for (label, (values, dropped)), color in zip(data.items(), _colors(len(data))):
        text = label if not dropped else f"{label} ({dropped} non-finite left out)"
        ax.hist(values, bins=edges, density=density, histtype="stepfilled", alpha=0.45,
                color=color, edgecolor=color, linewidth=1.2, label=text)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(("density" if density else "count") + (" (log scale)" if log else ""))
    several = len(data) > 1
    if title is None and not several:
        title = ax.get_legend_handles_labels()[1][0]
    _finish(ax, title=title, legend=several)
    return ax


def plot_layer_stats(stats, *, ylabel, ax=None, logy=False, title=None):
    """One line per label over layer index (1, 2, ...), e.g. activation std per layer.

    ``stats``: ``{label: [value per layer]}``. ``logy``: logarithmic y axis;
    values that are zero or negative cannot be drawn there, so they are shown
    as hollow triangles on the bottom edge (and the legend says so) rather
    than silently dropped. Returns the Axes.
    """
    _check_label_dict(stats, "stats", "{label: [value per layer]}")
    series = {}
    for label, values in stats.items():
        v = _to_numpy([_to_float(x, f"plot_layer_stats: {label!r}") for x in values] if not hasattr(values, "shape") else values)
        v = v.astype(np.float64).reshape(-1)
        if v.size == 0:
            raise ValueError(f"plot_layer_stats: {label!r} has no values")
        series[str(label)] = v
    ax = _new_axes(ax)
    bottom = None
    if logy:
        positive = np.concatenate([v[v > 0] for v in series.values()])
        bottom = positive.min() / 5 if positive.size else 1e-12
    for (label, v), color in zip(series.items(), _colors(len(series))):
        layers = np.arange(1, len(v) + 1)
        if logy and np.any(v <= 0):
            shown = np.where(v > 0, v, np.nan)
            ax.plot(layers, shown, marker="o", color=color, label=f"{label} (≤ 0 marked ▽ at bottom)")
            zero = v <= 0
            ax.plot(layers[zero], np.full(zero.sum(), bottom), linestyle="none", marker="v",
                    markerfacecolor="none", markeredgecolor=color, markersize=8, clip_on=False, label="_nolegend_")
        else:
            ax.plot(layers, v, marker="o", color=color, label=label)
    if logy:
        ax.set_yscale("log")
        ax.set_ylim(bottom=bottom)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    _integer_xticks(ax)
    several = len(series) > 1
    if title is None and not several:
        title = next(iter(series))
    _finish(ax, title=title, legend=several)
    return ax


def plot_schedules(schedules, *, ax=None, xlabel="step", ylabel="learning rate", logy=False, title=None):
    """Learning-rate schedules: ``{label: [rate at step 0, 1, ...]}``, one line each.

    Each rate is drawn as held until the next step (``steps-post``), which is
    how training uses it. Returns the Axes.
    """
    _check_label_dict(schedules, "schedules", "{label: [rate per step]}")
    ax = _new_axes(ax)
    for (label, values), color in zip(schedules.items(), _colors(len(schedules))):
        if callable(values):
            raise TypeError(f"plot_schedules: {label!r} is a function; pass its values, e.g. [f(t) for t in range(T)]")
        v = _to_numpy(values).astype(np.float64).reshape(-1)
        if v.size == 0:
            raise ValueError(f"plot_schedules: {label!r} has no values")
        ax.plot(np.arange(len(v)), v, drawstyle="steps-post", color=color, label=str(label), linewidth=2)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    several = len(schedules) > 1
    if title is None and not several:
        title = str(next(iter(schedules)))
    _finish(ax, title=title, legend=several)
    return ax


# --------------------------------------------------------------------------- optimizer paths


def _evaluate_grid(f: Callable, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """f on a grid, whether it is written as f(x, y) or f(p) with p[0], p[1]."""
    try:
        n_required = sum(
            1 for p in inspect.signature(f).parameters.values()
            if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
    except (TypeError, ValueError):
        n_required = 2
    if n_required >= 2:
        Z = _to_numpy(f(X, Y))
    else:
        try:
            Z = _to_numpy(f(np.stack([X, Y])))
        except Exception:
            Z = None
        if Z is None or Z.shape != X.shape:  # f is not vectorized: evaluate point by point
            flat = [float(_to_numpy(f(np.array([a, b])))) for a, b in zip(X.ravel(), Y.ravel())]
            Z = np.asarray(flat).reshape(X.shape)
    Z = np.broadcast_to(np.asarray(Z, dtype=np.float64), X.shape)
    if not np.isfinite(Z).any():
        raise ValueError("plot_optimizer_paths: f has no finite value inside xlim × ylim")
    return Z


def _contour_levels(Z: np.ndarray, levels):
    """Levels and a norm: log-spaced when f is nonnegative and spans many decades."""
    if not isinstance(levels, (int, np.integer)):
        return np.asarray(levels, dtype=np.float64), None
    finite = Z[np.isfinite(Z)]
    positive = finite[finite > 0]
    if finite.min() >= 0 and positive.size and finite.max() / np.percentile(positive, 1) > 1e3:
        from matplotlib.colors import LogNorm

        lo, hi = np.percentile(positive, 1) / 10, finite.max()
        return np.geomspace(lo, hi, int(levels)), LogNorm(lo, hi)
    return int(levels), None


def plot_optimizer_paths(f, paths, *, xlim, ylim, levels=30, ax=None, resolution=200,
                         minimum=None, xlabel="x", ylabel="y", title=None):
    """Contours of a 2-D function with optimizer paths on top.

    ``f``: vectorized over NumPy arrays, written as ``f(x, y)`` or ``f(p)``
    with ``p[0], p[1]`` the coordinates (a non-vectorized ``f(p)`` works too,
    more slowly). ``paths``: ``{label: array (T, 2)}`` of visited points.
    ``xlim``, ``ylim``: ``(low, high)`` of the view. ``levels``: a number of
    contour levels (log-spaced automatically when f is nonnegative and spans
    more than three decades, e.g. Rosenbrock) or explicit level values.
    Each path's start is a circle and its end a cross; ``minimum=(x, y)``
    marks a known minimum with a star. A path that leaves the view or stops
    being finite says so in the legend. Returns the Axes.
    """
    _check_label_dict(paths, "paths", "{label: array of shape (T, 2)}")
    bounds = []
    for name, lim in (("xlim", xlim), ("ylim", ylim)):
        lim = np.asarray(lim, dtype=np.float64)
        if lim.shape != (2,) or not np.all(np.isfinite(lim)) or lim[0] >= lim[1]:
            raise ValueError(f"plot_optimizer_paths: {name} must be (low, high) with low < high, got {lim.tolist()}")
        bounds.append(lim)
    (x0, x1), (y0, y1) = bounds
    arrays = {}
    for label, path in paths.items():
        p = _to_numpy(path).astype(np.float64)
        if p.ndim != 2 or p.shape[1] != 2 or len(p) == 0:
            raise ValueError(f"plot_optimizer_paths: path {label!r} must have shape (T, 2) with T ≥ 1, got {p.shape}")
        arrays[str(label)] = p
    from matplotlib.lines import Line2D

    ax = _new_axes(ax, figsize=(6.4, 5.0))
    X, Y = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    Z = _evaluate_grid(f, X, Y)
    lv, norm = _contour_levels(Z, levels)
    ax.contour(X, Y, Z, levels=lv, norm=norm, cmap="viridis", linewidths=0.8, alpha=0.7)
    for (label, p), color in zip(arrays.items(), _colors(len(arrays))):
        finite = np.all(np.isfinite(p), axis=1)
        notes = []
        if not finite.all():
            notes.append("diverged")
            p = p[: int(np.argmin(finite))]  # up to the first non-finite point
        if len(p) and (np.any((p[:, 0] < x0) | (p[:, 0] > x1) | (p[:, 1] < y0) | (p[:, 1] > y1))):
            notes.append("leaves the view")
        text = label + (f" ({', '.join(notes)})" if notes else "")
        if len(p) == 0:
            ax.plot([], [], color=color, label=text)
            continue
        ax.plot(p[:, 0], p[:, 1], color=color, marker=".", markersize=3, linewidth=1.5, label=text)
        ax.plot(*p[0], marker="o", color=color, markeredgecolor="black", markersize=8, linestyle="none", label="_nolegend_")
        ax.plot(*p[-1], marker="X", color=color, markeredgecolor="black", markersize=9, linestyle="none", label="_nolegend_")
    if minimum is not None:
        ax.plot(*np.asarray(minimum, dtype=np.float64), marker="*", color="gold", markeredgecolor="black",
                markersize=14, linestyle="none", label="minimum")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    handles, texts = ax.get_legend_handles_labels()
    handles += [Line2D([], [], marker="o", color="0.6", markeredgecolor="black", linestyle="none"),
                Line2D([], [], marker="X", color="0.6", markeredgecolor="black", linestyle="none")]
    texts += ["start", "end"]
    ax.legend(handles, texts, fontsize="small")
    if title is not None:
        ax.set_title(title)
    return ax
