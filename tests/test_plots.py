"""Tests for dlcourse.plots: labels, legends, band values, input types and errors."""

import os
import subprocess
import sys
import types

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from dlcourse import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def fake_history(n_epochs, seed):
    rng = np.random.default_rng(seed)
    acc = np.linspace(0.6, 0.95, n_epochs) + rng.normal(0, 0.01, n_epochs)
    return {
        "loss": list(np.linspace(1.0, 0.2, n_epochs)),
        "val_loss": list(np.linspace(1.1, 0.35, n_epochs)),
        "accuracy": list(acc),
        "val_accuracy": list(acc - 0.03 + rng.normal(0, 0.01, n_epochs)),
        "lr": [0.1] * n_epochs,
    }


def bands(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def band_bounds(collection, epochs):
    """Lower and upper edge of a fill_between band at the given x values."""
    verts = collection.get_paths()[0].vertices
    lower, upper = [], []
    for x in epochs:
        ys = verts[np.isclose(verts[:, 0], x), 1]
        lower.append(ys.min())
        upper.append(ys.max())
    return np.array(lower), np.array(upper)


def legend_texts(ax):
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


# --------------------------------------------------------------------------- import and style


def test_import_is_light_and_leaves_rcparams_alone():
    code = (
        "import sys, matplotlib as mpl\n"
        "before = dict(mpl.rcParams)\n"
        "import dlcourse.plots\n"
        "heavy = [m for m in ('torch', 'tensorflow', 'keras', 'seaborn', 'matplotlib.pyplot') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert dict(mpl.rcParams) == before, 'import changed rcParams'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr


def test_first_plot_applies_style_unless_opted_out():
    code = (
        "import matplotlib as mpl\n"
        "from dlcourse import plots\n"
        "{optout}"
        "before = mpl.rcParams['axes.grid']\n"
        "plots.plot_schedules({{'a': [1, 2]}})\n"
        "print(before, mpl.rcParams['axes.grid'])\n"
    )
    env = {**os.environ, "MPLBACKEND": "Agg"}
    styled = subprocess.run([sys.executable, "-c", code.format(optout="")], capture_output=True, text=True, env=env)
    assert styled.stdout.split() == ["False", "True"], styled.stderr
    kept = subprocess.run([sys.executable, "-c", code.format(optout="plots.set_style(None)\n")],
                          capture_output=True, text=True, env=env)
    assert kept.stdout.split() == ["False", "False"], kept.stderr


# --------------------------------------------------------------------------- as_history


def test_as_history_accepts_dict_object_and_experiment_result():
    raw = {"loss": [1.0, 0.5], "val_loss": np.array([1.2, 0.7])}
    expected = {"loss": [1.0, 0.5], "val_loss": [1.2, 0.7]}
    assert plots.as_history(raw) == expected
    assert plots.as_history(types.SimpleNamespace(history=raw)) == expected
    assert plots.as_history({"history": raw, "test_accuracy": 0.9}) == expected
    assert plots.as_history({"loss": [1.0, None]})["loss"][1] != plots.as_history({"loss": [1.0, None]})["loss"][1]


def test_as_history_reads_a_real_keras_history():
    keras = pytest.importorskip("keras")
    history = keras.callbacks.History()
    history.set_model(types.SimpleNamespace())  # fit() gives it the model it trains
    history.on_train_begin()
    for epoch, (loss, val) in enumerate([(0.9, 1.0), (0.5, 0.8)]):
        history.on_epoch_end(epoch, {"loss": loss, "val_loss": val})
    assert plots.as_history(history) == {"loss": [0.9, 0.5], "val_loss": [1.0, 0.8]}


def test_as_history_accepts_torch_tensors():
    torch = pytest.importorskip("torch")
    got = plots.as_history({"loss": torch.tensor([1.0, 0.5], requires_grad=True), "acc": [torch.tensor(0.25)]})
    assert got == {"loss": [1.0, 0.5], "acc": [0.25]}


@pytest.mark.parametrize("bad", [42, "loss", [0.1, 0.2], types.SimpleNamespace(history=[1, 2]), None])
def test_as_history_rejects_other_objects(bad):
    with pytest.raises(TypeError, match="Keras History"):
        plots.as_history(bad)


def test_as_history_rejects_non_list_values():
    with pytest.raises(TypeError, match="'loss' must be a list of numbers"):
        plots.as_history({"loss": 0.5})
    with pytest.raises(TypeError, match="'loss'"):
        plots.as_history({"loss": ["a lot"]})


def test_metric_label_in_words():
    assert plots.metric_label("val_accuracy") == "validation accuracy"
    assert plots.metric_label("loss") == "training loss"
    assert plots.metric_label("lr") == "learning rate"
    assert plots.metric_label("val_loss", split=False) == "loss"


# --------------------------------------------------------------------------- plot_history


def test_plot_history_draws_training_and_validation_per_metric():
    h = fake_history(6, 0)
    fig = plots.plot_history(h, title="run 1")
    assert isinstance(fig, matplotlib.figure.Figure)
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == ["loss", "accuracy"]
    assert all(ax.get_xlabel() == "epoch" for ax in axes)
    assert fig._suptitle.get_text() == "run 1"
    for ax, metric in zip(axes, ["loss", "accuracy"]):
        assert legend_texts(ax) == ["training", "validation"]
        train, val = ax.get_lines()
        np.testing.assert_array_equal(train.get_xdata(), np.arange(1, 7))
        np.testing.assert_allclose(train.get_ydata(), h[metric])
        np.testing.assert_allclose(val.get_ydata(), h["val_" + metric])


def test_plot_history_single_series_metric_has_one_line():
    fig = plots.plot_history(fake_history(4, 0), metrics="lr")
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 1 and ax.get_ylabel() == "learning rate"


def test_plot_history_missing_metric_names_available_ones():
    with pytest.raises(KeyError, match=r"'f1'.*available metrics: 'loss', 'val_loss', 'accuracy'"):
        plots.plot_history(fake_history(3, 0), metrics=("f1",))


def test_all_history_types_give_identical_plots():
    raw = fake_history(5, 1)
    train = pytest.importorskip("dlcourse.train")
    keras = pytest.importorskip("keras")
    ours = train.History()
    ours.history = {k: list(v) for k, v in raw.items()}
    theirs = keras.callbacks.History()
    theirs.set_model(types.SimpleNamespace())
    theirs.on_train_begin()
    for epoch in range(5):
        theirs.on_epoch_end(epoch, {k: v[epoch] for k, v in raw.items()})
    as_arrays = {k: np.asarray(v) for k, v in raw.items()}
    drawn = []
    for h in (raw, ours, theirs, as_arrays):
        fig = plots.plot_history(h)
        drawn.append([(tuple(line.get_xdata()), tuple(line.get_ydata())) for ax in fig.axes for line in ax.get_lines()])
        ax = plots.plot_runs({"a": [h, h]})
        drawn[-1].append(tuple(ax.get_lines()[0].get_ydata()))
    assert drawn[0] == drawn[1] == drawn[2] == drawn[3]


# --------------------------------------------------------------------------- plot_runs / plot_gap


def test_plot_runs_band_is_mean_plus_minus_std():
    runs = {"baseline": [fake_history(8, s) for s in range(3)], "dropout": [fake_history(8, 10 + s) for s in range(4)]}
    ax = plots.plot_runs(runs, "val_accuracy", title="study")
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "validation accuracy" and ax.get_title() == "study"
    assert legend_texts(ax) == ["baseline (3 seeds)", "dropout (4 seeds)"]
    assert ax.get_legend().get_title().get_text() == "mean ± std over seeds"
    lines, polys = ax.get_lines(), bands(ax)
    assert len(lines) == 2 and len(polys) == 2
    epochs = np.arange(1, 9)
    for line, poly, label in zip(lines, polys, runs):
        values = np.array([h["val_accuracy"] for h in runs[label]])
        mean, std = values.mean(axis=0), values.std(axis=0, ddof=1)  # sample std: seeds are a sample
        np.testing.assert_allclose(line.get_ydata(), mean)
        lower, upper = band_bounds(poly, epochs)
        np.testing.assert_allclose(lower, mean - std)
        np.testing.assert_allclose(upper, mean + std)


def test_plot_runs_unequal_lengths_solid_where_all_seeds_dashed_beyond():
    lengths = (4, 6, 6)
    histories = [fake_history(n, s) for s, n in enumerate(lengths)]
    ax = plots.plot_runs({"early stop": histories}, "val_accuracy")
    assert legend_texts(ax) == ["early stop (3 seeds; dashed: fewer seeds)"]
    solid, dashed = ax.get_lines()
    assert solid.get_linestyle() == "-" and dashed.get_linestyle() == "--"
    all_three = np.array([h["val_accuracy"][:4] for h in histories])
    np.testing.assert_allclose(solid.get_ydata(), all_three.mean(axis=0))
    np.testing.assert_array_equal(dashed.get_xdata(), [4, 5, 6])
    two = np.array([h["val_accuracy"][4:6] for h in histories[1:]])
    np.testing.assert_allclose(dashed.get_ydata()[1:], two.mean(axis=0))
    full_band, tail_band = bands(ax)
    lower, upper = band_bounds(tail_band, [5, 6])
    np.testing.assert_allclose(upper, two.mean(axis=0) + two.std(axis=0, ddof=1))
    np.testing.assert_allclose(lower, two.mean(axis=0) - two.std(axis=0, ddof=1))


def test_plot_runs_band_has_no_width_where_one_seed_is_left(recwarn):
    histories = [fake_history(3, 0), fake_history(5, 1)]
    ax = plots.plot_runs({"early stop": histories}, "val_accuracy")
    lower, upper = band_bounds(bands(ax)[1], [4, 5])
    np.testing.assert_allclose(upper, lower)  # one seed: its spread is unknown, no band drawn
    np.testing.assert_allclose(upper, histories[1]["val_accuracy"][3:])
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_plot_runs_single_seed_has_no_band_and_accepts_bare_history():
    ax = plots.plot_runs({"one": fake_history(5, 0)}, "loss")
    assert bands(ax) == [] and legend_texts(ax) == ["one (1 seed)"]
    assert ax.get_ylabel() == "training loss"


def test_plot_runs_errors():
    with pytest.raises(TypeError, match="looks like a single history"):
        plots.plot_runs(fake_history(3, 0))
    with pytest.raises(ValueError, match="empty"):
        plots.plot_runs({})
    with pytest.raises(KeyError, match=r"'b' seed #1: metric 'val_f1'.*available metrics"):
        plots.plot_runs({"b": [{"val_f1": [0.5]}, {"loss": [1.0]}]}, "val_f1")


def test_plot_gap_is_training_minus_validation():
    runs = {"plain": [fake_history(6, s) for s in range(3)]}
    ax = plots.plot_gap(runs, "accuracy")
    assert ax.get_ylabel() == "accuracy gap (training − validation)" and ax.get_xlabel() == "epoch"
    gaps = np.array([np.subtract(h["accuracy"], h["val_accuracy"]) for h in runs["plain"]])
    mean_line = ax.get_lines()[0]
    np.testing.assert_allclose(mean_line.get_ydata(), gaps.mean(axis=0))
    lower, upper = band_bounds(bands(ax)[0], np.arange(1, 7))
    np.testing.assert_allclose(upper - lower, 2 * gaps.std(axis=0, ddof=1))
    assert any(np.all(np.asarray(line.get_ydata()) == 0) for line in ax.get_lines())  # the zero reference line
    with pytest.raises(KeyError, match="'val_f1'"):
        plots.plot_gap({"x": [{"f1": [1.0]}]}, "f1")


# --------------------------------------------------------------------------- image_grid

RNG = np.random.default_rng(0)
GRAY = RNG.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("images", [GRAY, GRAY[..., None], GRAY[:, None], GRAY.astype(np.float32) / 255])
def test_image_grid_accepts_layouts_and_dtypes(images):
    fig = plots.image_grid(images, [0, 1, 2, 3, 4, 5], class_names=list("abcdef"), ncols=3, title="samples")
    shown = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    assert len(shown) == 6 and fig._suptitle.get_text() == "samples"
    assert [ax.get_title() for ax in fig.axes] == list("abcdef")
    expected = GRAY[1].astype(float) / (255 if images.dtype != np.uint8 else 1)
    np.testing.assert_allclose(np.asarray(shown[1].get_array(), dtype=float), expected, rtol=1e-6)
    assert shown[1].get_clim() == ((0.0, 255.0) if images.dtype == np.uint8 else (0.0, 1.0))


def test_image_grid_rgb_channels_first_and_last_agree():
    rgb = RNG.random((4, 8, 8, 3))
    first = plots.image_grid(rgb, n=4, ncols=2)
    last = plots.image_grid(np.moveaxis(rgb, -1, 1), n=4, ncols=2)
    a = first.axes[0].get_images()[0].get_array()
    np.testing.assert_allclose(a, last.axes[0].get_images()[0].get_array())
    np.testing.assert_allclose(a, rgb[0])


def test_image_grid_marks_wrong_predictions_in_red():
    fig = plots.image_grid(GRAY, [0, 1, 2, 3, 4, 5], class_names=list("abcdef"), predictions=[0, 2, 2, 3, 1, 5])
    titles = [(ax.get_title(), ax.title.get_color()) for ax in fig.axes[:6]]
    assert titles[1] == ("c\n(true: b)", "red") and titles[4] == ("b\n(true: e)", "red")
    assert titles[0][0] == "a" and titles[0][1] != "red"
    assert len(fig.axes) == 10  # 2 rows of 5, the last 4 cells hidden
    assert not any(ax.axison for ax in fig.axes)


def test_image_grid_mixed_labels_show_both_classes():
    soft = np.array([[0.7, 0.3, 0.0], [0.0, 1.0, 0.0]])
    fig = plots.image_grid(GRAY[:2], soft, class_names=["x", "y", "z"])
    assert [ax.get_title() for ax in fig.axes] == ["0.70 x\n0.30 y", "y"]


def test_image_grid_errors():
    with pytest.raises(ValueError, match=r"\(N, H, W\).*got \(6, 5, 28, 28\)"):
        plots.image_grid(np.zeros((6, 5, 28, 28)))
    with pytest.raises(ValueError, match="outside class_names"):
        plots.image_grid(GRAY[:1], [7], class_names=["a"])
    with pytest.raises(ValueError, match="only 2 labels"):
        plots.image_grid(GRAY, [0, 1])


# --------------------------------------------------------------------------- histograms, layers, schedules


def test_plot_histograms_overlay_on_shared_bins():
    arrays = {"a": RNG.normal(0, 1, 500), "b": RNG.normal(1, 0.5, 300)}
    ax = plots.plot_histograms(arrays, bins=20, xlabel="weight", log=True)
    assert ax.get_xlabel() == "weight" and ax.get_ylabel() == "count (log scale)" and ax.get_yscale() == "log"
    assert legend_texts(ax) == ["a", "b"]
    assert len(ax.patches) == 2 and all(p.get_alpha() < 1 for p in ax.patches)
    lo = min(v.min() for v in arrays.values())
    hi = max(v.max() for v in arrays.values())
    for patch in ax.patches:  # both outlines span the same bin range
        xs = patch.get_path().vertices[:, 0]
        np.testing.assert_allclose([xs.min(), xs.max()], [lo, hi])


def test_plot_histograms_single_array_titles_and_non_finite_noted():
    ax = plots.plot_histograms({"layer 1": [1.0, 2.0, np.nan]})
    assert ax.get_legend() is None and ax.get_title() == "layer 1 (1 non-finite left out)"
    assert ax.get_ylabel() == "count"
    with pytest.raises(ValueError, match="'w' is empty"):
        plots.plot_histograms({"w": []})


def test_plot_layer_stats_one_line_per_label_and_zeros_on_log_axis():
    stats = {"xavier": [1.0, 0.8, 0.6], "zeros": [0.5, 0.0, 0.0], "he": [1.0, 1.0, 1.0, 1.0]}
    ax = plots.plot_layer_stats(stats, ylabel="activation std", logy=True, title="init")
    assert ax.get_ylabel() == "activation std" and ax.get_xlabel() == "layer" and ax.get_yscale() == "log"
    assert ax.get_title() == "init"
    assert legend_texts(ax) == ["xavier", "zeros (≤ 0 marked ▽ at bottom)", "he"]
    xavier, zeros, zero_markers, he = ax.get_lines()
    np.testing.assert_array_equal(he.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(xavier.get_ydata(), stats["xavier"])
    np.testing.assert_array_equal(zero_markers.get_xdata(), [2, 3])
    np.testing.assert_allclose(zero_markers.get_ydata(), ax.get_ylim()[0])


def test_plot_schedules_lines_and_labels():
    schedules = {"step": [0.1, 0.1, 0.01, 0.01], "cosine": 0.05 * (1 + np.cos(np.linspace(0, np.pi, 6)))}
    ax = plots.plot_schedules(schedules, xlabel="epoch")
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "learning rate"
    assert legend_texts(ax) == ["step", "cosine"]
    step, cosine = ax.get_lines()
    np.testing.assert_array_equal(step.get_xdata(), [0, 1, 2, 3])
    np.testing.assert_allclose(cosine.get_ydata(), schedules["cosine"])
    with pytest.raises(TypeError, match="pass its values"):
        plots.plot_schedules({"f": lambda t: 0.1})


# --------------------------------------------------------------------------- optimizer paths


def rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x**2) ** 2


def test_plot_optimizer_paths_contours_paths_and_markers():
    paths = {"sgd": np.array([[-1.5, 2.0], [-1.0, 1.0], [0.5, 0.3]]), "adam": [[-1.5, 2.0], [0.9, 0.8]]}
    ax = plots.plot_optimizer_paths(rosenbrock, paths, xlim=(-2, 2), ylim=(-1, 3), minimum=(1, 1), title="paths")
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y" and ax.get_title() == "paths"
    assert ax.get_xlim() == (-2, 2) and ax.get_ylim() == (-1, 3)
    assert len(ax.collections) == 1  # the contour set
    assert legend_texts(ax) == ["sgd", "adam", "minimum", "start", "end"]
    sgd, sgd_start, sgd_end = ax.get_lines()[:3]
    np.testing.assert_allclose(np.c_[sgd.get_xdata(), sgd.get_ydata()], paths["sgd"])
    assert (sgd_start.get_xdata()[0], sgd_start.get_ydata()[0]) == (-1.5, 2.0) and sgd_start.get_marker() == "o"
    assert (sgd_end.get_xdata()[0], sgd_end.get_ydata()[0]) == (0.5, 0.3) and sgd_end.get_marker() == "X"


def test_plot_optimizer_paths_function_forms_agree_and_divergence_is_noted():
    path = {"gd": np.array([[1.0, 1.0], [3.0, 0.0], [np.inf, np.nan]])}

    def two_args(x, y):
        return x**2 + 4 * y**2

    def one_vector(p):
        return p[0] ** 2 + 4 * p[1] ** 2

    def scalar_only(p):
        return float(p[0] ** 2 + 4 * p[1] ** 2)

    levels = []
    for f in (two_args, one_vector, scalar_only):
        ax = plots.plot_optimizer_paths(f, path, xlim=(-2, 2), ylim=(-2, 2), levels=8, resolution=30)
        levels.append(ax.collections[0].levels)
        assert legend_texts(ax)[0] == "gd (diverged, leaves the view)"
        np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [1.0, 3.0])
    np.testing.assert_allclose(levels[0], levels[1])
    np.testing.assert_allclose(levels[0], levels[2])


def test_plot_optimizer_paths_errors():
    with pytest.raises(ValueError, match=r"shape \(T, 2\)"):
        plots.plot_optimizer_paths(rosenbrock, {"p": np.zeros((4, 3))}, xlim=(-1, 1), ylim=(-1, 1))
    with pytest.raises(ValueError, match="xlim must be"):
        plots.plot_optimizer_paths(rosenbrock, {"p": np.zeros((4, 2))}, xlim=(1, -1), ylim=(-1, 1))


# --------------------------------------------------------------------------- quiet, and renders


def draw_everything():
    runs = {"a": [fake_history(6, s) for s in range(3)], "b": [fake_history(n, s) for s, n in enumerate((4, 6))]}
    return {
        "history": plots.plot_history(fake_history(6, 0), title="history"),
        "runs": plots.plot_runs(runs).figure,
        "gap": plots.plot_gap(runs).figure,
        "grid": plots.image_grid(GRAY, [0, 1, 2, 3, 4, 5], predictions=[0, 1, 0, 3, 4, 0]),
        "hist": plots.plot_histograms({"a": RNG.normal(size=100), "b": RNG.normal(size=100)}, log=True).figure,
        "layers": plots.plot_layer_stats({"a": [1, 0.5, 0.0], "b": [1, 1, 1]}, ylabel="std", logy=True).figure,
        "schedules": plots.plot_schedules({"a": [1, 0.5], "b": [1, 1]}).figure,
        "paths": plots.plot_optimizer_paths(rosenbrock, {"p": [[-1, 2], [0, 0]]}, xlim=(-2, 2), ylim=(-1, 3)).figure,
    }


def test_plots_write_nothing_to_stderr_and_render(capfd, tmp_path):
    figures = draw_everything()
    for name, fig in figures.items():
        fig.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 5000, name
    captured = capfd.readouterr()
    assert captured.err == ""
