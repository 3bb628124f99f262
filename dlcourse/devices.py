"""Which device PyTorch trains on: ``"auto"`` picks CUDA, then Apple's MPS, then the CPU.

::

    from dlcourse import train
    train.resolve_device("auto")    # device(type='cuda') on Colab with a GPU, device(type='cpu') on a laptop

Keras picks a GPU by itself; :func:`dlcourse.train.fit` and
:func:`~dlcourse.train.evaluate` do the same for PyTorch through
:func:`resolve_device` (their default is ``device="auto"``). On the CPU the
results are exactly those of ``device="cpu"``.
"""

from __future__ import annotations

from dlcourse import frameworks

torch = frameworks.import_torch()

__all__ = ["resolve_device", "model_device"]

_TYPES = ("cpu", "cuda", "mps")
_FORMS = "'auto', 'cpu', 'cuda', 'cuda:N', 'mps', a torch.device, or None (keep the model where it is)"


def _cuda_available() -> bool:
    return bool(torch.cuda.is_available())


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and bool(mps.is_available())


def model_device(model) -> "torch.device":
    """The device of the model's first parameter (or buffer); the CPU for a model with neither."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def resolve_device(device="auto", model=None) -> "torch.device":
    """The ``torch.device`` that ``device`` names on this machine.

    ``"auto"``: CUDA if ``torch.cuda.is_available()``, else MPS if
    ``torch.backends.mps.is_available()``, else the CPU. ``None``: where
    ``model`` already is (the CPU without a model). ``"cpu"``, ``"cuda"``,
    ``"cuda:N"``, ``"mps"`` or a ``torch.device``: that device, which must be
    available here. Anything else raises ``ValueError`` saying what is accepted.
    """
    if device is None:
        return model_device(model) if model is not None else torch.device("cpu")
    if isinstance(device, str) and device.strip().lower() == "auto":
        if _cuda_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise ValueError(f"device must be {_FORMS}; got {type(device).__name__} {device!r}")
    try:
        resolved = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except RuntimeError:
        raise ValueError(f"device must be {_FORMS}; got {device!r}") from None
    if resolved.type not in _TYPES:
        raise ValueError(f"device must be {_FORMS}; got {device!r} (type {resolved.type!r} is not supported)")
    _check_available(resolved, device)
    return resolved


def _check_available(resolved: "torch.device", asked) -> None:
    fallback = "Use device='auto' to take the best device this machine has, or device='cpu'."
    if resolved.type == "cuda":
        if not _cuda_available():
            raise ValueError(
                f"device={asked!r} asks for a CUDA GPU, but torch.cuda.is_available() is False here "
                f"(no GPU visible, or PyTorch {torch.__version__} built without CUDA). {fallback}"
            )
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device={asked!r}: this machine has {count} CUDA device(s), numbered from 0. {fallback}")
    elif resolved.type == "mps" and not _mps_available():
        raise ValueError(
            f"device={asked!r} asks for Apple's MPS, but torch.backends.mps.is_available() is False here. {fallback}"
        )
