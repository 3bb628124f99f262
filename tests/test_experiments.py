"""dlcourse.experiments: multi-seed runs, on-disk cache, summaries."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from dlcourse import experiments


class Counter:
    """An experiment function that counts its calls."""

    def __init__(self):
        self.calls = []
        self.__qualname__ = "Counter"
        self.__module__ = __name__

    def __call__(self, config, seed):
        self.calls.append((dict(config), seed))
        return {
            "test_accuracy": 0.5 + 0.1 * seed + config.get("lr", 0),
            "history": {"val_accuracy": [0.1, 0.2 + seed], "loss": [1.0, 0.5]},
            "numpy_value": np.float32(0.25),
            "pair": (1, 2),
        }


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("DLCOURSE_CACHE", str(folder))
    monkeypatch.setenv("DLCOURSE_PROFILE", "default")
    return folder


def test_second_identical_call_does_not_call_fn_again(cache):
    fn = Counter()
    first = experiments.run(fn, {"lr": 0.1}, seeds=[0, 1], name="exp")
    assert len(fn.calls) == 2
    second = experiments.run(fn, {"lr": 0.1}, seeds=[0, 1], name="exp")
    assert len(fn.calls) == 2
    assert first == second
    assert first[1]["test_accuracy"] == pytest.approx(0.7)
    # Results are JSON round-tripped, also on the first call.
    assert first[0]["numpy_value"] == 0.25 and first[0]["pair"] == [1, 2]
    assert len(list(cache.glob("*.json"))) == 2


def test_default_seeds_come_from_the_profile(cache, monkeypatch):
    fn = Counter()
    assert len(experiments.run(fn, {}, name="exp")) == 3
    assert [seed for _, seed in fn.calls] == [0, 1, 2]
    monkeypatch.setenv("DLCOURSE_PROFILE", "ci")
    assert len(experiments.run(fn, {}, name="exp")) == 1
    assert len(fn.calls) == 4  # a different profile is a different run


@pytest.mark.parametrize(
    "change",
    [
        dict(config={"lr": 0.2}),
        dict(config={"lr": 0.1, "dropout": 0.3}),
        dict(seeds=[5]),
        dict(name="other"),
    ],
)
def test_changed_config_seed_or_name_recomputes(cache, change):
    fn = Counter()
    base = dict(config={"lr": 0.1}, seeds=[0], name="exp")
    experiments.run(fn, base["config"], seeds=base["seeds"], name=base["name"])
    merged = {**base, **change}
    experiments.run(fn, merged["config"], seeds=merged["seeds"], name=merged["name"])
    assert len(fn.calls) == 2


def test_changed_profile_recomputes(cache, monkeypatch):
    fn = Counter()
    experiments.run(fn, {"lr": 0.1}, seeds=[0], name="exp")
    monkeypatch.setenv("DLCOURSE_PROFILE", "ci")
    experiments.run(fn, {"lr": 0.1}, seeds=[0], name="exp")
    assert len(fn.calls) == 2
    monkeypatch.setenv("DLCOURSE_PROFILE", "default")
    experiments.run(fn, {"lr": 0.1}, seeds=[0], name="exp")
    assert len(fn.calls) == 2


def test_config_key_order_and_numpy_scalars_do_not_change_the_key(cache):
    fn = Counter()
    experiments.run(fn, {"lr": 0.1, "wd": 1e-4}, seeds=[0], name="exp")
    experiments.run(fn, {"wd": np.float64(1e-4), "lr": 0.1}, seeds=[np.int64(0)], name="exp")
    assert len(fn.calls) == 1


def test_cache_key_is_sha256_of_canonical_json():
    key = experiments.cache_key("exp", {"b": 1, "a": [1, 2]}, 3, "ci")
    import hashlib

    payload = {"format": experiments.CACHE_FORMAT, "code": "", "name": "exp", "config": {"a": [1, 2], "b": 1},
               "seed": 3, "profile": "ci"}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    assert key == hashlib.sha256(text.encode()).hexdigest()
    assert key != experiments.cache_key("exp", {"b": 1, "a": [1, 2]}, 3, "default")
    assert key != experiments.cache_key("exp", {"b": 1, "a": [1, 2]}, 3, "ci", code="abc")


def test_corrupted_cache_file_is_recomputed(cache, capsys):
    fn = Counter()
    experiments.run(fn, {"lr": 0.1}, seeds=[0], name="exp")
    (path,) = cache.glob("*.json")
    path.write_text('{"key": "trunc')
    result = experiments.run(fn, {"lr": 0.1}, seeds=[0], name="exp")
    assert len(fn.calls) == 2
    assert result[0]["test_accuracy"] == pytest.approx(0.6)
    assert "recomputing" in capsys.readouterr().out
    experiments.run(fn, {"lr": 0.1}, seeds=[0], name="exp")  # rewritten: cached again
    assert len(fn.calls) == 2
    path.write_text(json.dumps({"key": "someone-else", "result": {}}))
    experiments.run(fn, {"lr": 0.1}, seeds=[0], name="exp")
    assert len(fn.calls) == 3


def test_force_recomputes(cache):
    fn = Counter()
    experiments.run(fn, {"lr": 0.1}, seeds=[0], name="exp")
    experiments.run(fn, {"lr": 0.1}, seeds=[0], name="exp", force=True)
    assert len(fn.calls) == 2


def test_explicit_cache_dir_argument(tmp_path, cache):
    fn = Counter()
    experiments.run(fn, {}, seeds=[0], name="exp", cache_dir=tmp_path / "elsewhere")
    assert len(list((tmp_path / "elsewhere").glob("*.json"))) == 1
    assert not cache.exists()


def test_unwritable_cache_is_not_an_error(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DLCOURSE_CACHE", str(blocker / "cache"))
    fn = Counter()
    results = experiments.run(fn, {"lr": 0.1}, seeds=[0, 1], name="exp")
    experiments.run(fn, {"lr": 0.1}, seeds=[0, 1], name="exp")
    assert len(results) == 2 and len(fn.calls) == 4  # computed, not cached
    out = capsys.readouterr().out
    assert out.count("not cached") == 1  # one notice, on stdout


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("DLCOURSE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert experiments.default_cache_dir() == tmp_path / ".cache" / "dlcourse" / "experiments"


def test_no_temporary_files_left_behind(cache):
    experiments.run(Counter(), {}, seeds=[0, 1, 2], name="exp")
    assert sorted(p.suffix for p in cache.iterdir()) == [".json"] * 3
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp")]


def test_non_json_config_names_the_key(cache):
    with pytest.raises(TypeError, match=r"config\['optimizer'\].*not JSON-serialisable"):
        experiments.run(Counter(), {"optimizer": object()}, seeds=[0], name="exp")
    with pytest.raises(TypeError, match=r"config\['model'\]\['act'\]"):
        experiments.run(Counter(), {"model": {"act": np.tanh}}, seeds=[0], name="exp")
    with pytest.raises(TypeError, match="keys must be strings"):
        experiments.run(Counter(), {1: 2}, seeds=[0], name="exp")


def test_bad_results_and_names(cache):
    with pytest.raises(TypeError, match="must return a dict"):
        experiments.run(lambda c, s: 1.0, {}, seeds=[0], name="exp")
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        experiments.run(lambda c, s: {"model": object()}, {}, seeds=[0], name="exp2")
    with pytest.raises(ValueError, match="name="):
        experiments.run(lambda c, s: {}, {}, seeds=[0])


def test_default_name_is_the_qualified_function_name(cache):
    calls = []

    def train_once(config, seed):
        calls.append(seed)
        return {"a": 1}

    experiments.run(train_once, {}, seeds=[0])
    experiments.run(train_once, {}, seeds=[0])
    assert calls == [0]
    (path,) = cache.glob("*.json")
    record = json.loads(path.read_text())
    assert record["name"].endswith("test_default_name_is_the_qualified_function_name.<locals>.train_once")
    assert record["seed"] == 0 and record["profile"] == "default" and record["result"] == {"a": 1}


def test_run_many(cache):
    fn = Counter()
    runs = experiments.run_many(fn, {"slow": {"lr": 0.01}, "fast": {"lr": 0.1}}, seeds=[0, 1], name="exp")
    assert list(runs) == ["slow", "fast"]
    assert [r["test_accuracy"] for r in runs["fast"]] == pytest.approx([0.6, 0.7])
    experiments.run_many(fn, {"fast again": {"lr": 0.1}}, seeds=[0, 1], name="exp")
    assert len(fn.calls) == 4  # same config under another label is cached


def test_summarize_mean_and_sample_std():
    results = [{"acc": 0.9, "history": {"val_accuracy": [0.1, 0.8]}},
               {"acc": 0.7, "history": {"val_accuracy": [0.2, 0.6]}},
               {"acc": 0.8, "history": {"val_accuracy": [0.3, 0.7]}}]
    mean, std = experiments.summarize(results, "acc")
    assert mean == pytest.approx(0.8)
    assert std == pytest.approx(np.std([0.9, 0.7, 0.8], ddof=1))
    assert std == pytest.approx(0.1)  # by hand: squared deviations 0.01 + 0.01 + 0, divided by n - 1 = 2
    mean, std = experiments.summarize(results, "history.val_accuracy")  # last epoch
    assert mean == pytest.approx(0.7) and std == pytest.approx(0.1)


def test_summarize_single_seed_has_undefined_std_without_warning(recwarn):
    mean, std = experiments.summarize([{"acc": 0.9}], "acc")
    assert mean == pytest.approx(0.9) and math.isnan(std)
    assert not recwarn.list


def test_standard_error():
    assert experiments.standard_error([0.9, 0.7, 0.8]) == pytest.approx(0.1 / math.sqrt(3))
    assert math.isnan(experiments.standard_error([0.5]))
    with pytest.raises(ValueError):
        experiments.standard_error([])


def test_t_quantile_known_values():
    # Textbook two-sided 95 % values of Student's t.
    for df, expected in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042), (60, 2.000), (120, 1.980)]:
        assert experiments.t_quantile(df) == pytest.approx(expected, abs=5e-4)
    assert experiments.t_quantile(10**6) == pytest.approx(1.959966, abs=1e-6)  # tends to the normal quantile
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="df"):
            experiments.t_quantile(bad)
    with pytest.raises(ValueError, match="0.95"):
        experiments.t_quantile(5, confidence=0.9)


def test_t_quantile_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in list(range(1, 61)) + [75, 100, 500]:
        assert experiments.t_quantile(df) == pytest.approx(stats.t.ppf(0.975, df), abs=1e-6)


def test_paired_difference_pairs_by_seed():
    a = [{"acc": 0.82}, {"acc": 0.85}, {"acc": 0.80}]
    b = [{"acc": 0.80}, {"acc": 0.84}, {"acc": 0.77}]
    diff = experiments.paired_difference(a, b, "acc")
    # differences 0.02, 0.01, 0.03: mean 0.02, sample std 0.01, sem 0.01 / sqrt(3), t(2) = 4.3027
    assert diff.n == 3 and diff.mean == pytest.approx(0.02)
    assert diff.std == pytest.approx(0.01) and diff.sem == pytest.approx(0.01 / math.sqrt(3))
    half = 4.3026527 * 0.01 / math.sqrt(3)
    assert (diff.low, diff.high) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    # Three seeds give 2 degrees of freedom: t = 4.30 makes the interval wide enough to contain 0.
    assert diff.low < 0 < diff.high
    # Reversing the roles negates the difference and mirrors the interval.
    back = experiments.paired_difference(b, a, "acc")
    assert (back.mean, back.low, back.high) == (pytest.approx(-0.02), pytest.approx(-diff.high), pytest.approx(-diff.low))


def test_paired_difference_single_seed_and_errors(recwarn):
    diff = experiments.paired_difference([{"acc": 0.9}], [{"acc": 0.8}], "acc")
    assert diff.mean == pytest.approx(0.1) and diff.n == 1
    assert all(math.isnan(v) for v in (diff.std, diff.sem, diff.low, diff.high))
    assert not recwarn.list
    with pytest.raises(ValueError, match="same seeds"):
        experiments.paired_difference([{"acc": 0.9}], [{"acc": 0.8}, {"acc": 0.7}], "acc")
    with pytest.raises(KeyError, match="loss"):
        experiments.paired_difference([{"acc": 0.9}], [{"acc": 0.8}], "loss")


def test_summarize_errors():
    with pytest.raises(KeyError, match="history.val_loss"):
        experiments.summarize([{"history": {"loss": [1.0]}}], "history.val_loss")
    with pytest.raises(ValueError):
        experiments.summarize([], "acc")
    with pytest.raises(TypeError):
        experiments.summarize([{"acc": "high"}], "acc")
    with pytest.raises(TypeError, match="list of results"):
        experiments.summarize({"a": [{"acc": 1.0}]}, "acc")


def test_concurrent_processes_never_read_a_partial_file(cache):
    """Atomic writes: a reader in another process sees either no file or a complete one."""
    code = (
        "from dlcourse import experiments\n"
        "def big(config, seed):\n"
        "    return {'history': {'loss': [float(i) for i in range(200000)]}}\n"
        "for _ in range(3):\n"
        "    experiments.run(big, {}, seeds=[0], name='big', force=True)\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code])
    seen = 0
    while writer.poll() is None:
        for path in cache.glob("big-*.json"):
            json.loads(path.read_text())  # never a truncated file
            seen += 1
    assert writer.wait() == 0
    assert list(cache.glob("big-*.json"))


def test_edited_function_retrains_instead_of_reusing_old_results(tmp_path):
    """Same name, config and seed, but different code: the old cached result must not come back."""
    calls = []

    def first(config, seed):
        calls.append("first")
        return {"value": 1}

    def second(config, seed):
        calls.append("second")
        return {"value": 2, "new_key": True}

    assert experiments.run(first, {"a": 1}, seeds=[0], name="edited", cache_dir=tmp_path) == [{"value": 1}]
    got = experiments.run(second, {"a": 1}, seeds=[0], name="edited", cache_dir=tmp_path)
    assert got == [{"value": 2, "new_key": True}], f"stale result from the old code: {got}"
    assert calls == ["first", "second"]
    assert experiments.run(second, {"a": 1}, seeds=[0], name="edited", cache_dir=tmp_path) == got
    assert calls == ["first", "second"], "the unchanged function was recomputed"


def test_plus_minus_prints_the_spread_or_says_there_is_none():
    mean, std = experiments.summarize([{"acc": 0.80}, {"acc": 0.82}], "acc")
    assert experiments.plus_minus(mean, std) == "0.810 ± 0.014"
    assert experiments.plus_minus(0.0123, 0.004, 4, signed=True) == "+0.0123 ± 0.0040"
    one_mean, one_std = experiments.summarize([{"acc": 0.9}], "acc")
    text = experiments.plus_minus(one_mean, one_std)
    assert text == "0.900 (one seed, no spread)" and "nan" not in text
    diff = experiments.paired_difference([{"acc": 0.9}], [{"acc": 0.8}], "acc")
    assert experiments.plus_minus(diff.mean, diff.sem, signed=True) == "+0.100 (one seed, no spread)"
    with pytest.raises(ValueError, match="digits"):
        experiments.plus_minus(0.5, 0.1, digits=-1)
