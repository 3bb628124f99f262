"""dlcourse.profiles: the DLCOURSE_PROFILE switch and seeding."""

import dataclasses
import random
import subprocess
import sys

import numpy as np
import pytest

from dlcourse import profiles


def test_default_profile_when_unset(monkeypatch):
    monkeypatch.delenv("DLCOURSE_PROFILE", raising=False)
    assert profiles.get().name == "default"


@pytest.mark.parametrize(
    "name, sizes",
    [
        ("ci", (2000, 500, 1000, 2, (0,))),
        ("default", (10000, 2000, 2000, 8, (0, 1, 2))),
        ("full", (None, 5000, None, 20, (0, 1, 2, 3, 4))),
    ],
)
def test_profile_sizes_match_the_contract(monkeypatch, name, sizes):
    monkeypatch.setenv("DLCOURSE_PROFILE", name)
    p = profiles.get()
    assert p.name == name
    assert (p.n_train, p.n_val, p.n_test, p.epochs, p.seeds) == sizes
    assert isinstance(p.batch_size, int) and p.batch_size > 0
    assert profiles.get(name) == p
    assert profiles.get(p) is p


def test_profile_is_frozen():
    p = profiles.get("ci")
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.epochs = 100


def test_choose_returns_the_value_for_this_profile():
    assert profiles.get("ci").choose(ci="a", default="b", full="c") == "a"
    assert profiles.get("default").choose(ci="a", default="b", full="c") == "b"
    assert profiles.get("full").choose(ci="a", default="b", full="c") == "c"
    with pytest.raises(TypeError):
        profiles.get("ci").choose(ci=1, default=2)  # every profile's value is required


def test_invalid_profile_names_bad_value_and_valid_ones(monkeypatch):
    monkeypatch.setenv("DLCOURSE_PROFILE", "fast")
    with pytest.raises(ValueError) as info:
        profiles.get()
    message = str(info.value)
    assert "'fast'" in message and "DLCOURSE_PROFILE" in message
    for valid in ("ci", "default", "full"):
        assert repr(valid) in message
    with pytest.raises(ValueError, match="'tiny'"):
        profiles.get("tiny")


def test_seed_everything_seeds_python_and_numpy():
    profiles.seed_everything(123)
    first = (random.random(), np.random.rand(3))
    profiles.seed_everything(123)
    second = (random.random(), np.random.rand(3))
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    profiles.seed_everything(124)
    assert random.random() != first[0]


def test_seed_everything_rejects_bad_seeds():
    with pytest.raises(TypeError):
        profiles.seed_everything(1.5)
    with pytest.raises(ValueError):
        profiles.seed_everything(-1)


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_seed_everything_never_imports_frameworks():
    out = _run(
        "import sys; from dlcourse import profiles; profiles.seed_everything(0); "
        "print('torch' in sys.modules, 'tensorflow' in sys.modules)"
    )
    assert out == "False False"


def test_seed_everything_seeds_torch_when_imported():
    torch = pytest.importorskip("torch")
    profiles.seed_everything(7)
    a = torch.rand(4)
    profiles.seed_everything(7)
    b = torch.rand(4)
    assert torch.equal(a, b)
    profiles.seed_everything(8)
    assert not torch.equal(a, torch.rand(4))


def test_seed_everything_deterministic_flag_for_torch():
    torch = pytest.importorskip("torch")
    before = torch.are_deterministic_algorithms_enabled()
    try:
        profiles.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)
