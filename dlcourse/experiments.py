"""Run a configuration over several seeds, cache the results on disk, summarize.

::

    from dlcourse import experiments

    def train_once(config, seed):
        ...                                   # build, fit, evaluate
        return {"history": history.history, "test_accuracy": acc}

    runs = experiments.run_many(train_once, {"baseline": {"lr": 0.1}, "dropout": {"lr": 0.1, "p": 0.3}})
    mean, std = experiments.summarize(runs["dropout"], "history.val_accuracy")
    diff = experiments.paired_difference(runs["dropout"], runs["baseline"], "test_accuracy")
    print(f"dropout - baseline: {diff.mean:+.3f}, 95% interval [{diff.low:+.3f}, {diff.high:+.3f}]")

Each (name, config, seed, profile) result is stored as one JSON file under
``$DLCOURSE_CACHE`` (default ``~/.cache/dlcourse/experiments``), named by the
SHA-256 of the canonical JSON of those four plus a cache-format version. A
second identical call reads the files instead of calling ``fn`` again; any
change to the config, seed, profile or name computes afresh. Files are written
atomically (temporary file, then rename). An unreadable or corrupt file is
recomputed; an unwritable cache folder only means nothing is cached (one
notice on stdout).

Results come back as they would from the cache (a JSON round trip: tuples
become lists, NumPy scalars and arrays become numbers and lists), so the first
and every later call return the same thing.

Statistics. The seeds of a run are a small sample of the seeds one could have
used, so ``summarize`` reports the sample standard deviation (``ddof=1``), the
same as the bands of ``dlcourse.plots``. With one seed the spread is unknown
and ``summarize`` returns ``nan`` for it (silently: no warning), never a
misleading 0. To compare two configurations, ``paired_difference`` pairs their
runs by seed (same data order and initial weights where the code seeds them)
and gives the mean difference, its standard error and a t-based confidence
interval; ``t_quantile`` is the Student t quantile it uses (no SciPy needed).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import pathlib
import re
import tempfile
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from dlcourse import profiles

__all__ = ["run", "run_many", "summarize", "paired_difference", "PairedDifference", "standard_error", "t_quantile", "default_cache_dir", "cache_key", "CACHE_FORMAT", "ENV_VAR"]

CACHE_FORMAT = 1
ENV_VAR = "DLCOURSE_CACHE"

_warned_unwritable: set[str] = set()


def default_cache_dir() -> pathlib.Path:
    """The cache folder: ``$DLCOURSE_CACHE`` or ``~/.cache/dlcourse/experiments``."""
    configured = os.environ.get(ENV_VAR, "").strip()
    if configured:
        return pathlib.Path(configured).expanduser()
    return pathlib.Path.home() / ".cache" / "dlcourse" / "experiments"


# --------------------------------------------------------------------------- keys


def _normalize(value: Any, path: str) -> Any:
    """``value`` as plain JSON types; TypeError naming the config entry JSON cannot represent."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, Mapping):
        normalized = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: keys must be strings, got {type(key).__name__} {key!r}")
            normalized[key] = _normalize(item, f"{path}[{key!r}]")
        return normalized
    if isinstance(value, (list, tuple)):
        return [_normalize(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise TypeError(
        f"{path} = {value!r} has type {type(value).__name__}, which is not JSON-serialisable; "
        "config values must be str, int, float, bool, None, or lists/dicts of those "
        "(pass a name such as 'adam' instead of an object or class)"
    )


def _canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def code_fingerprint(fn: Callable) -> str:
    """SHA-256 of ``fn``'s source (its bytecode when the source is unavailable).

    Part of the cache key, so that editing an experiment function retrains instead of
    returning results the old code computed. Functions ``fn`` calls are not covered: put
    what they depend on in the config.
    """
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        code = getattr(fn, "__code__", None)
        text = repr((code.co_code, code.co_consts)) if code is not None else repr(fn)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(name: str, config: Mapping[str, Any], seed: int, profile: str, code: str = "") -> str:
    """SHA-256 hex digest identifying one run: name, config, seed, profile name, code, cache format."""
    payload = {
        "format": CACHE_FORMAT,
        "code": code,
        "name": name,
        "config": _normalize(dict(config), "config"),
        "seed": int(seed),
        "profile": profile,
    }
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


def _default_name(fn: Callable) -> str:
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not qualname or "<lambda>" in qualname:
        raise ValueError("cannot derive a cache name from a lambda; pass name='...' to experiments.run")
    return f"{getattr(fn, '__module__', None) or '?'}.{qualname}"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:60] or "run"


# --------------------------------------------------------------------------- storage


def _to_json_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _load(path: pathlib.Path, key: str) -> dict | None:
    """The cached result at ``path``, or None when missing, unreadable, corrupt or for another key."""
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        print(f"dlcourse.experiments: ignoring unreadable cache file {path.name} ({type(error).__name__}); recomputing")
        return None
    if not (isinstance(record, dict) and record.get("key") == key and isinstance(record.get("result"), dict)):
        print(f"dlcourse.experiments: ignoring malformed cache file {path.name}; recomputing")
        return None
    return record["result"]


def _notice_unwritable(folder: pathlib.Path, error: OSError) -> None:
    if str(folder) not in _warned_unwritable:
        _warned_unwritable.add(str(folder))
        print(
            f"dlcourse.experiments: cannot write the cache folder {folder} ({error.strerror or error}); "
            f"results are computed but not cached. Set {ENV_VAR} to a writable folder to cache them."
        )


def _store(folder: pathlib.Path, path: pathlib.Path, text: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    except OSError as error:
        _notice_unwritable(folder, error)
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp_name, path)
    except OSError as error:
        _notice_unwritable(folder, error)
        try:
            os.unlink(tmp_name)
        except OSError:
            pass


# --------------------------------------------------------------------------- API


def run(
    fn: Callable[[dict, int], dict],
    config: Mapping[str, Any],
    *,
    seeds: Sequence[int] | None = None,
    name: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    force: bool = False,
) -> list[dict]:
    """Call ``fn(config, seed)`` for each seed (default: the profile's), with an on-disk cache.

    Returns one result dict per seed, in the order of ``seeds``. ``name``
    defaults to ``fn``'s module and qualified name (required for a lambda).
    ``force=True`` recomputes and overwrites the cached results. ``config`` must
    be a dict of JSON-serialisable values (``TypeError`` names the entry that is
    not); ``fn`` must return a dict of JSON-serialisable values (NumPy scalars
    and arrays are converted).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable as fn(config, seed), got {type(fn).__name__}")
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    normalized_config = _normalize(dict(config), "config")
    profile = profiles.get()
    if seeds is None:
        seeds = profile.seeds
    seeds = list(seeds)
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seeds must be ints, got {seed!r}")
    name = name if name is not None else _default_name(fn)
    folder = pathlib.Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    code = code_fingerprint(fn)

    results = []
    for seed in seeds:
        seed = int(seed)
        key = cache_key(name, config, seed, profile.name, code)
        path = folder / f"{_slug(name)}-{key[:32]}.json"
        cached = None if force else _load(path, key)
        if cached is not None:
            results.append(cached)
            continue
        result = fn(dict(config), seed)
        if not isinstance(result, Mapping):
            raise TypeError(f"{name} returned {type(result).__name__}; it must return a dict of results")
        try:
            result_text = json.dumps(dict(result), default=_to_json_value, allow_nan=True)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} returned a result that is not JSON-serialisable: {error}") from None
        result = json.loads(result_text)
        record_text = json.dumps(
            {
                "format": CACHE_FORMAT,
                "key": key,
                "name": name,
                "config": normalized_config,
                "seed": seed,
                "profile": profile.name,
                "result": result,
            },
            default=_to_json_value,
            allow_nan=True,
            indent=1,
        )
        _store(folder, path, record_text)
        results.append(result)
    return results


def run_many(fn: Callable[[dict, int], dict], configs: Mapping[str, Mapping[str, Any]], **kw) -> dict[str, list[dict]]:
    """``run`` for each labelled config: ``{label: [result per seed]}`` (same keyword arguments as ``run``)."""
    if not isinstance(configs, Mapping):
        raise TypeError("configs must be a dict {label: config}")
    return {label: run(fn, config, **kw) for label, config in configs.items()}


def _lookup(result: Mapping[str, Any], key: str) -> float:
    value: Any = result
    walked = []
    for part in key.split("."):
        walked.append(part)
        if not isinstance(value, Mapping) or part not in value:
            available = sorted(value) if isinstance(value, Mapping) else type(value).__name__
            raise KeyError(f"{'.'.join(walked)!r} not found in a result (available there: {available})")
        value = value[part]
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{key!r} is an empty list")
        value = value[-1]  # a per-epoch history: its last epoch
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{key!r} is {type(value).__name__}, not a number")
    return float(value)


def _values(results: Sequence[Mapping[str, Any]], key: str, caller: str) -> list[float]:
    if isinstance(results, Mapping):
        raise TypeError(f"{caller} takes the list of results from run() (one dict per seed), not a dict")
    values = [_lookup(result, key) for result in results]
    if not values:
        raise ValueError(f"{caller} needs at least one result")
    return values


def _mean_and_sample_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (``ddof=1``); the std is ``nan`` for a single value."""
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarize(results: Sequence[Mapping[str, Any]], key: str) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``) over seeds of a scalar ``key``.

    ``key`` may be dotted: ``"history.val_accuracy"`` reads ``result["history"]["val_accuracy"]``,
    and a list (a per-epoch history) contributes its last value. The seeds are a
    sample, so the std divides by ``n - 1``; with a single seed it is undefined and
    returned as ``nan`` (no warning is raised).
    """
    return _mean_and_sample_std(_values(results, key, "summarize"))


def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean of ``values``: sample std / sqrt(n); ``nan`` for n = 1.

    It estimates how far the mean over these seeds is from the mean over all seeds.
    """
    values = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    if not values:
        raise ValueError("standard_error needs at least one value")
    return _mean_and_sample_std(values)[1] / math.sqrt(len(values))


# Two-sided 95 % quantiles t_{0.975, df} of Student's t, df = 1..30 (to 7 decimals).
_T975 = (12.7062047, 4.3026527, 3.1824463, 2.7764451, 2.5705818, 2.4469119, 2.3646243, 2.3060041,
         2.2621572, 2.2281389, 2.2009852, 2.1788128, 2.1603687, 2.1447867, 2.1314495, 2.1199053,
         2.1098156, 2.1009220, 2.0930241, 2.0859634, 2.0796138, 2.0738731, 2.0686576, 2.0638986,
         2.0595386, 2.0555294, 2.0518305, 2.0484071, 2.0452296, 2.0422725)
_Z975 = 1.959963984540054


def t_quantile(df: int, confidence: float = 0.95) -> float:
    """The multiplier ``t`` of a two-sided ``confidence`` interval ``mean ± t · SE`` with ``df`` degrees of freedom.

    Only ``confidence=0.95`` is supported (``ValueError`` otherwise). For df ≤ 30 the
    value comes from a table; above, from the Cornish-Fisher expansion around the
    normal quantile 1.95996 (error below 1e-7 for df > 30).
    """
    if confidence != 0.95:
        raise ValueError(f"t_quantile supports confidence=0.95 only, got {confidence!r}")
    if isinstance(df, bool) or not isinstance(df, (int, np.integer)) or df < 1:
        raise ValueError(f"df must be a positive integer (number of seeds - 1), got {df!r}")
    if df <= len(_T975):
        return _T975[int(df) - 1]
    z = _Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


class PairedDifference(NamedTuple):
    """Mean of the per-seed differences a - b, with its spread and a confidence interval."""

    mean: float  # mean over seeds of (a - b)
    std: float  # sample std of the differences (nan for one seed)
    sem: float  # standard error of the mean difference: std / sqrt(n)
    low: float  # mean - t * sem
    high: float  # mean + t * sem
    n: int  # number of seed pairs


def paired_difference(
    results_a: Sequence[Mapping[str, Any]],
    results_b: Sequence[Mapping[str, Any]],
    key: str,
    *,
    confidence: float = 0.95,
) -> PairedDifference:
    """Compare two configurations run with the same seeds: statistics of ``a - b`` per seed.

    ``results_a`` and ``results_b`` are the lists ``run`` returned for the same seeds, in
    the same order (``run_many`` guarantees it), so the i-th results of both share a seed
    and are paired. ``key`` as in :func:`summarize`. Pairing removes what the two runs of
    one seed have in common (data order, initial weights), which is why the interval is
    usually narrower than the two ± std columns suggest. The interval is
    ``mean ± t_quantile(n - 1) · sem``; with one seed ``std``, ``sem``, ``low`` and
    ``high`` are ``nan``. ``ValueError`` when the lists differ in length.
    """
    a = _values(results_a, key, "paired_difference")
    b = _values(results_b, key, "paired_difference")
    if len(a) != len(b):
        raise ValueError(
            f"paired_difference pairs runs by seed: got {len(a)} results for a and {len(b)} for b "
            "(run both configurations with the same seeds)"
        )
    differences = [x - y for x, y in zip(a, b)]
    mean, std = _mean_and_sample_std(differences)
    n = len(differences)
    if n < 2:
        return PairedDifference(mean, math.nan, math.nan, math.nan, math.nan, n)
    sem = std / math.sqrt(n)
    half = t_quantile(n - 1, confidence) * sem
    return PairedDifference(mean, std, sem, mean - half, mean + half, n)


def plus_minus(mean: float, spread: float, digits: int = 3, *, signed: bool = False) -> str:
    """``mean ± spread`` for a printed table, e.g. ``"0.812 ± 0.011"``.

    ``spread`` is a sample std or a standard error; with one seed it is ``nan`` (see
    :func:`summarize`) and the text says so, ``"0.812 (one seed, no spread)"``, instead of
    printing ``± nan``. ``signed=True`` writes the mean's sign (``"+0.012 ± 0.004"``), for
    differences. Used by the tables of notebooks 01–09.
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or digits < 0:
        raise ValueError(f"digits must be a non-negative integer, got {digits!r}")
    centre = f"{mean:{'+' if signed else ''}.{digits}f}"
    if math.isnan(spread):
        return f"{centre} (one seed, no spread)"
    return f"{centre} ± {spread:.{digits}f}"
