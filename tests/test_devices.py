"""dlcourse.devices: device="auto" picks CUDA, then MPS, then the CPU; bad names are clear errors.

GPU availability is mocked, so this runs on any machine."""

import pytest

torch = pytest.importorskip("torch")

from dlcourse import devices, train  # noqa: E402


@pytest.fixture
def machine(monkeypatch):
    """Pretend the machine has the given accelerators: machine(cuda=2, mps=True)."""

    def pretend(cuda: int = 0, mps: bool = False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return pretend


@pytest.mark.parametrize(
    "cuda, mps, expected",
    [(1, True, "cuda"), (1, False, "cuda"), (0, True, "mps"), (0, False, "cpu")],
)
def test_auto_prefers_cuda_then_mps_then_cpu(machine, cuda, mps, expected):
    machine(cuda=cuda, mps=mps)
    assert devices.resolve_device("auto") == torch.device(expected)
    assert train.resolve_device(" AUTO ") == torch.device(expected)
    assert devices.resolve_device() == torch.device(expected)


def test_named_devices_that_are_available(machine):
    machine(cuda=2, mps=True)
    assert devices.resolve_device("cpu") == torch.device("cpu")
    assert devices.resolve_device("cuda") == torch.device("cuda")
    assert devices.resolve_device("cuda:1") == torch.device("cuda", 1)
    assert devices.resolve_device(torch.device("mps")) == torch.device("mps")


def test_none_keeps_the_model_where_it_is(machine):
    machine(cuda=1)
    model = torch.nn.Linear(2, 2)
    assert devices.resolve_device(None, model) == torch.device("cpu")
    assert devices.resolve_device(None) == torch.device("cpu")
    assert devices.model_device(torch.nn.ReLU()) == torch.device("cpu")  # no parameters


@pytest.mark.parametrize(
    "device, match",
    [
        ("cuda", r"asks for a CUDA GPU, but torch\.cuda\.is_available\(\) is False.*device='auto'"),
        ("cuda:0", r"asks for a CUDA GPU"),
        ("mps", r"asks for Apple's MPS, but torch\.backends\.mps\.is_available\(\) is False"),
        ("gpu", r"device must be 'auto', 'cpu', 'cuda', 'cuda:N', 'mps'.*got 'gpu'"),
        ("meta", r"type 'meta' is not supported"),
        (0, r"device must be .*got int 0"),
    ],
)
def test_unknown_or_unavailable_devices_are_clear_errors(machine, device, match):
    machine(cuda=0, mps=False)
    with pytest.raises(ValueError, match=match):
        devices.resolve_device(device)


def test_a_cuda_index_beyond_the_machine_is_an_error(machine):
    machine(cuda=1)
    with pytest.raises(ValueError, match=r"has 1 CUDA device\(s\), numbered from 0"):
        devices.resolve_device("cuda:1")


def test_fit_and_evaluate_reject_an_unavailable_device_before_training(machine):
    machine(cuda=0, mps=False)
    model = torch.nn.Linear(4, 2)
    x, y = torch.randn(8, 4), torch.randint(0, 2, (8,))
    with pytest.raises(ValueError, match="CUDA"):
        train.fit(model, (x, y), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                  device="cuda", progress=False)
    with pytest.raises(ValueError, match="MPS"):
        train.evaluate(model, (x, y), device="mps")


def _history(**device):
    from dlcourse import profiles

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 10, generator=g)
    y = (x @ torch.randn(10, 3, generator=g)).argmax(1)
    profiles.seed_everything(1)
    model = torch.nn.Sequential(torch.nn.Linear(10, 16), torch.nn.Dropout(0.3), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    history = train.fit(model, (x, y), val_data=(x, y), epochs=3, batch_size=32, progress=False,
                        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), **device)
    result = {k: v for k, v in history.history.items() if k != "epoch_time"}
    return result, history.params["device"], train.evaluate(model, (x, y), **device)


def test_auto_on_a_cpu_machine_trains_exactly_as_the_cpu(machine):
    machine(cuda=0, mps=False)
    default = _history()
    assert default[1] == "cpu"
    assert _history(device="auto") == default
    assert _history(device="cpu") == default
    assert _history(device=None) == default
