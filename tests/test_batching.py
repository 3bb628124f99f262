"""dlcourse.batching: the one batcher behind train.fit's (x, y) pairs and data.torch_loader,
and dlcourse.data as the re-exporting face of its five modules."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlcourse import batching, data, train  # noqa: E402


def _pair(n=50):
    return torch.arange(n * 2, dtype=torch.float32).reshape(n, 2), torch.arange(n)


def _epoch_labels(loader):
    return torch.cat([y for _, y in loader]).tolist()


def test_without_a_generator_each_epoch_is_one_draw_from_the_global_rng_and_nothing_else():
    x, y = _pair()
    loader = batching.pair_loader(x, y, batch_size=16, shuffle=True)
    torch.manual_seed(3)
    epochs = [_epoch_labels(loader), _epoch_labels(loader)]
    after = torch.rand(1)

    torch.manual_seed(3)
    expected = []
    for _ in range(2):
        seed = int(torch.randint(0, 2**62, (1,)).item())
        expected.append(torch.randperm(50, generator=torch.Generator().manual_seed(seed)).tolist())
    assert epochs == expected and epochs[0] != epochs[1]
    assert torch.equal(after, torch.rand(1))  # no other draw from the global RNG
    assert [len(b[1]) for b in loader] == [16, 16, 16, 2]


def test_unshuffled_pairs_leave_the_global_rng_alone_and_keep_the_order():
    x, y = _pair()
    torch.manual_seed(0)
    labels = _epoch_labels(batching.pair_loader(x, y, batch_size=7))
    after = torch.rand(1)
    torch.manual_seed(0)
    assert labels == list(range(50)) and torch.equal(after, torch.rand(1))


def test_torch_loader_orders_and_rng_use_are_those_of_a_plain_dataloader():
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (70, 28, 28), dtype=np.uint8), rng.integers(0, 10, 70)
    plain = torch.utils.data.TensorDataset(torch.from_numpy(data.to_float(x)), torch.from_numpy(y))
    seeded = torch.utils.data.DataLoader(plain, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(4))
    ours = data.torch_loader(x, y, batch_size=32, shuffle=True, seed=4)
    for _ in range(2):
        assert [b[1].tolist() for b in ours] == [b[1].tolist() for b in seeded]

    torch.manual_seed(1)
    [b for b in torch.utils.data.DataLoader(plain, batch_size=32)]
    after_plain = torch.rand(1)
    torch.manual_seed(1)
    [b for b in data.torch_loader(x, y, batch_size=32)]
    assert torch.equal(torch.rand(1), after_plain)  # one draw per epoch, as a DataLoader does


def test_the_batcher_never_rescales_values():
    x = torch.full((4, 3), 200, dtype=torch.uint8)
    batch_x, _ = next(iter(batching.pair_loader(x, torch.zeros(4, dtype=torch.long), batch_size=4)))
    assert batch_x.dtype == torch.uint8 and int(batch_x.max()) == 200
    loader_x, _ = next(iter(data.torch_loader(x.numpy(), np.zeros(4, np.int64), batch_size=4)))
    assert loader_x.dtype == torch.float32 and float(loader_x.max()) == pytest.approx(200 / 255)


def test_fit_uses_the_shared_batcher_with_the_profile_batch_size():
    batches = batching.as_batches(_pair(), role="train_data", batch_size=16, shuffle=True)
    loader = data.torch_loader(np.zeros((5, 28, 28), np.uint8), np.zeros(5, np.int64))
    assert type(batches.dataset) is type(loader.dataset) is batching._BatchTensors
    model = torch.nn.Linear(2, 50)
    history = train.fit(model, _pair(), epochs=1, optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                        batch_size=16, progress=False)
    assert history.params["batch_size"] == 16 and history.params["steps"] == 4


def test_split_batch_is_public_and_names_the_role():
    x, y = _pair(3)
    assert batching.split_batch((x, y), "train_data") == (x, y)
    with pytest.raises(ValueError, match="val_data must yield"):
        batching.split_batch([x], "val_data")


def test_data_re_exports_every_name_from_the_module_that_defines_it():
    from dlcourse import datasets, imagenette, pipelines, sources, splits

    for module in (datasets, sources, splits, pipelines, imagenette):
        for name in module.__all__:
            assert getattr(data, name) is getattr(module, name), name
            assert name in data.__all__, name
    assert data._MEMO is sources._MEMO


def test_setting_a_name_on_data_takes_effect_where_it_is_read(monkeypatch):
    from dlcourse import datasets, imagenette, sources

    monkeypatch.setattr(data, "IMAGENETTE_HASH", "md5:0")
    monkeypatch.setattr(data, "MIRRORS", {"mnist": ()})
    assert imagenette.IMAGENETTE_HASH == "md5:0"
    assert datasets.MIRRORS == sources.MIRRORS == imagenette.MIRRORS == {"mnist": ()}
    monkeypatch.undo()
    assert imagenette.IMAGENETTE_HASH.startswith("md5:e793")
    assert datasets.MIRRORS is sources.MIRRORS is imagenette.MIRRORS and "imagenette" in sources.MIRRORS
