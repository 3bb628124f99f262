"""The data-only channel between hidden tests and the student's code (dlcourse/channel.py) and the
trusted runner around it (autograder/hidden.py): what crosses, what is refused, what a lying
kernel can and cannot do."""

from __future__ import annotations

import json
import os
import pickle
import socket
import stat
import struct
import threading
import time

import numpy as np
import pytest
import torch

from autograder.hidden import HiddenRun, lint, visible_imports
from dlcourse import channel, checks
from dlcourse.channel import Channel, ChannelError, ChannelTimeout, Remote, keep, remote_type


class _LyingFloat(float):
    def __eq__(self, other):
        return True

    __hash__ = float.__hash__


class _LyingArray(np.ndarray):
    def __array_function__(self, func, types, args, kwargs):
        return np.arange(3)

    def __eq__(self, other):
        return np.ones(np.shape(other), dtype=bool)


class _LyingTensor(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return True  # every torch function and method "agrees"


def _patched_tensor():
    t = torch.zeros(3)
    t.numpy = lambda *a, **k: np.ones(3)  # a patched method on the instance
    t.tolist = lambda: [1.0, 1.0, 1.0]
    return t


class _Model:
    def __init__(self, k):
        self.k = k
        self.weight = torch.ones(2, requires_grad=True)

    def scale(self, x):
        return x * self.k

    def __len__(self):
        return 3

    def __iter__(self):
        return iter([1, "two", 3.0])


def _student_namespace():
    def fails(kind):
        class StudentError(ValueError):
            pass
        if kind == "value":
            raise StudentError("negative input: -1")
        if kind == "todo":
            raise NotImplementedError("fill in this function")
        raise RuntimeError("boom")

    def select(items, score):
        return max(items, key=score)

    return {"np": np, "torch": torch, "Model": _Model, "fails": fails, "select": select,
            "lying_float": lambda: _LyingFloat(0.5), "lying_array": lambda: np.zeros(3).view(_LyingArray),
            "lying_tensor": lambda: torch.zeros(3).as_subclass(_LyingTensor), "patched_tensor": _patched_tensor,
            "echo": lambda *args, **kwargs: (args, kwargs), "draw": lambda rng: rng.random(3),
            "sleep": lambda s: time.sleep(s) or "woke"}


@pytest.fixture
def student():
    """``student`` bound to an in-process channel over a namespace of the student's definitions."""
    link = Channel.in_process(_student_namespace())
    with channel.using(link):
        yield channel.student


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize("value", [
    None, True, 0, -2**70, 1.5, b"\x00bytes", float("nan"), float("inf"), "text ∑", [1, [2, (3, "4")]], (),
    {"a": 1, 2: [3.0], (1, 2): None}, np.float32(2.5), np.int8(-3), np.bool_(True), np.arange(6).reshape(2, 3),
    np.zeros((0, 4)), np.array(7.0), np.ones((3, 4))[:, ::2], np.array([1 + 2j]), np.dtype("float16"), slice(1, None, 2),
])
def test_data_round_trips_exactly(student, value):
    got = student.echo(value)[0][0]
    if isinstance(value, (np.ndarray, np.generic)):
        assert type(got) is type(value) and got.dtype == value.dtype and got.shape == value.shape
        np.testing.assert_array_equal(got, value)
    elif isinstance(value, float) and value != value:
        assert got != got
    else:
        assert got == value and type(got) is type(value)


def test_tensors_keep_dtype_and_shape_and_arrive_without_grad(student):
    for t in (torch.arange(5, dtype=torch.int16), torch.tensor(3.0), torch.zeros(2, 0, 3), torch.rand(3, 4).T):
        got = student.echo(t)[0][0]
        assert type(got) is torch.Tensor and got.dtype == t.dtype and got.shape == t.shape and torch.equal(got, t)
    assert student.torch.float64 == torch.float64


def test_what_comes_back_is_plain_data_whatever_the_student_returned(student):
    lie = student.lying_float()
    assert type(lie) is float and lie == 0.5 and not lie == 0.7, "a float subclass's __eq__ does not survive"
    arr = student.lying_array()
    assert type(arr) is np.ndarray and np.concatenate([arr, arr]).shape == (6,), "an ndarray subclass does not survive"
    lying = student.lying_tensor()
    assert isinstance(lying, Remote), "a tensor subclass is not data: it stays in the kernel"
    with pytest.raises(AssertionError):
        checks.assert_close(lying, torch.zeros(3))
    patched = student.patched_tensor()
    assert type(patched) is torch.Tensor and patched.tolist() == [0.0, 0.0, 0.0], "patched methods do not survive"


def test_a_generator_is_sent_as_a_copy_of_its_state(student):
    rng = np.random.default_rng(7)
    np.testing.assert_array_equal(student.draw(rng), np.random.default_rng(7).random(3))
    np.testing.assert_array_equal(student.draw(rng), np.random.default_rng(7).random(3)), "the test's rng did not move"


def test_student_errors_arrive_as_the_builtin_class_with_message_and_traceback(student):
    with pytest.raises(ValueError, match="negative input") as caught:
        student.fails("value")
    assert isinstance(caught.value, channel.StudentRaised) and caught.value.student_type == "StudentError"
    assert any("fails" in line for line in caught.value.student_traceback)
    with pytest.raises(NotImplementedError):
        student.fails("todo")
    with pytest.raises(RuntimeError, match="boom"):
        student.fails("other")
    with pytest.raises(NameError, match="not defined in your notebook"):
        student.missing_function


def test_objects_stay_in_the_kernel_as_handles(student):
    model = student.Model(3)
    assert isinstance(model, Remote) and repr(model) == f"<student's {__name__}._Model object>"
    assert model.k == 3 and model.scale(np.arange(3)).tolist() == [0, 3, 6]
    assert isinstance(model.weight, Remote), "a tensor that requires grad stays in the kernel"
    assert torch.equal(model.weight.detach(), torch.ones(2))
    assert len(model) == 3 and list(model) == [1, "two", 3.0]
    model.k = 5
    assert model.scale(1) == 5
    with pytest.raises(TypeError, match="no truth value"):
        bool(model)
    assert model != student.Model(3) and student.isinstance(model, student.Model)
    assert remote_type(model)[0] == f"{__name__}._Model"
    assert student.Model.__name__ == "_Model"
    kept = keep(student.np.arange, 4)
    assert isinstance(kept, Remote) and kept.sum() == 6


def test_handles_are_released_when_the_tests_drop_them():
    namespace = _student_namespace()
    link = Channel.in_process(namespace)
    with channel.using(link):
        for _ in range(50):
            channel.student.Model(1).k
        channel.student.len([1])  # the releases travel with the next request
    assert len(link.server.objects) <= 2


def test_framework_classes_travel_by_name_and_tests_functions_as_callbacks(student):
    layer = student.torch.nn.Sequential(student.torch.nn.Linear(3, 2), student.torch.nn.ReLU())
    assert student.isinstance(layer[0], torch.nn.Linear), "a class of torch travels by its name"
    assert remote_type(layer)[0] == "torch.nn.modules.container.Sequential"
    assert student.type(layer[1]).__name__ == "ReLU"
    calls = []
    best = student.select([3, 1, 2], lambda x: calls.append(x) or -x)
    assert best == 1 and calls == [3, 1, 2]


def test_what_cannot_be_sent_is_a_clear_error(student):
    with pytest.raises(TypeError, match="cannot be sent to the student's kernel"):
        student.echo(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="requires grad"):
        student.echo(torch.ones(2, requires_grad=True))
    with pytest.raises(TypeError, match="cannot be sent"):
        student.echo(object())


# --------------------------------------------------------------------------- messages a lying kernel sends


def _message(header, buffers=()):
    return channel._pack(header, list(buffers))


def _decode(message):
    header, buffers = channel._unpack(channel._Reader(message), len(message))
    return channel._Decoder(buffers, handle=lambda x: "handle").decode(header["ok"])


@pytest.mark.parametrize("answer, buffers, problem", [
    ({"ok": {"$": "array", "buf": 0, "dtype": "|O", "shape": [1], "as": "numpy"}}, [b"12345678"], "not allowed"),
    ({"ok": {"$": "array", "buf": 0, "dtype": "<U4", "shape": [1], "as": "numpy"}}, [b"x" * 16], "not allowed"),
    ({"ok": {"$": "array", "buf": 0, "dtype": "<f8", "shape": [3], "as": "numpy"}}, [b"\0" * 16], "needs 24 bytes"),
    ({"ok": {"$": "array", "buf": 0, "dtype": "<f8", "shape": [-1], "as": "numpy"}}, [b"\0" * 8], "malformed shape"),
    ({"ok": {"$": "array", "buf": 3, "dtype": "<f8", "shape": [1], "as": "numpy"}}, [b"\0" * 8], "without its data"),
    ({"ok": {"$": "pickle", "data": "gASVAAAAAA=="}}, [], "not allowed"),
    ({"ok": {"$": "generator", "state": {"$": "dict", "items": [["bit_generator", "os.system"]]}}}, [], "unknown kind"),
    ({"ok": {"$": "dict", "items": [[[1], 2]]}}, [], "unhashable"),
    ({"ok": {"no": "tag"}}, [], "not allowed"),
])
def test_malformed_answers_are_refused(answer, buffers, problem):
    with pytest.raises(ChannelError, match=problem):
        _decode(_message(answer, buffers))
    assert not issubclass(ChannelError, Exception), "a hidden test's `except Exception` cannot swallow it"


def test_lengths_are_checked_before_anything_is_read():
    huge_header = struct.pack("!II", 2**31, 0)
    with pytest.raises(ChannelError, match="header"):
        channel._unpack(channel._Reader(huge_header + b"{}"), 2**20)
    body = json.dumps({"ok": 1}).encode()
    lying_buffer = struct.pack("!II", len(body), 1) + body + struct.pack("!Q", 2**40)
    with pytest.raises(ChannelError, match="more than"):
        channel._unpack(channel._Reader(lying_buffer), 2**20)
    with pytest.raises(ChannelError, match="ended early"):
        channel._unpack(channel._Reader(struct.pack("!II", 50, 0) + b"{"), 2**20)
    with pytest.raises(ChannelError, match="malformed"):
        channel._unpack(channel._Reader(struct.pack("!II", 3, 0) + b"\xff\xfe{"), 2**20)


# --------------------------------------------------------------------------- over a socket, as at grading time


def _socket_pair(tmp_path, kernel):
    """A listening test side and a 'kernel' thread running ``kernel(path)``."""
    path = str(tmp_path / "t.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    thread = threading.Thread(target=kernel, args=(path,), daemon=True)
    thread.start()
    listener.settimeout(10)
    conn, _ = listener.accept()
    return conn, thread


def test_serve_answers_over_a_socket_until_done(tmp_path, monkeypatch):
    namespace = _student_namespace()
    monkeypatch.setattr(channel, "_namespace", lambda: namespace)
    conn, thread = _socket_pair(tmp_path, channel.serve)
    link = Channel.over_socket(conn, time.monotonic() + 30)
    with channel.using(link):
        assert channel.student.Model(2).scale(np.ones(2)).tolist() == [2.0, 2.0]
        assert channel.student.select([1, 5], lambda x: x) == 5
        # a test's function, called back by the student's code, may itself call the student's code
        assert channel.student.select([1, 5], lambda x: -channel.student.Model(x).scale(1)) == 1
        with pytest.raises(ValueError):
            channel.student.fails("value")
    link.close()
    thread.join(5)
    assert not thread.is_alive(), "serve returns when told the tests are done"


def test_a_student_call_past_the_deadline_times_out(tmp_path, monkeypatch):
    namespace = _student_namespace()
    monkeypatch.setattr(channel, "_namespace", lambda: namespace)
    conn, _ = _socket_pair(tmp_path, channel.serve)
    link = Channel.over_socket(conn, time.monotonic() + 1.0)
    with channel.using(link), pytest.raises(ChannelTimeout):
        channel.student.sleep(5)
    conn.close()


def test_a_kernel_that_sends_a_pickle_or_garbage_is_refused_never_unpickled(tmp_path):
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    def lying_kernel(path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.recv(65536)
        sock.sendall(pickle.dumps(Payload()))
        time.sleep(0.5)
        sock.close()

    conn, _ = _socket_pair(tmp_path, lying_kernel)
    link = Channel.over_socket(conn, time.monotonic() + 5)
    with channel.using(link), pytest.raises(ChannelError):
        channel.student.anything(1)
    assert not marker.exists()


def test_a_kernel_that_hangs_up_is_a_channel_error(tmp_path):
    def hang_up(path):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        sock.close()

    conn, _ = _socket_pair(tmp_path, hang_up)
    link = Channel.over_socket(conn, time.monotonic() + 5)
    with channel.using(link), pytest.raises(ChannelError, match="closed the connection|kernel failed"):
        channel.student.anything(1)


# --------------------------------------------------------------------------- the trusted runner and its lint


def test_lint_refuses_names_the_hidden_part_would_need_from_the_kernel():
    visible = "import numpy as np\nfrom dlcourse import checks\nx = np.ones(3)\ndef helper(v):\n    return v\n"
    hidden = ("### BEGIN HIDDEN TESTS\nfrom dlcourse.checks import student\nimport torch\n"
              "def mine(a):\n    return np.sum(a)\n"
              "checks.assert_close(student.f(np.ones(2)), mine(torch.ones(2)))\nprint(len([1]))\n")
    assert lint(visible, hidden) == []
    problems = lint(visible, hidden + "f(1)\nhelper(x)\n")
    assert [p.split(" reads ")[1].split(",")[0] for p in problems] == ["'f'", "'helper'", "'x'"]
    assert "student.f" in problems[0]
    assert visible_imports(visible) == "import numpy as np\nfrom dlcourse import checks"


def _run_hidden(tmp_path, monkeypatch, hidden, timeout=20, namespace=None):
    namespace = namespace or _student_namespace()
    monkeypatch.setattr(channel, "_namespace", lambda: namespace)
    run = HiddenRun(tmp_path, "import numpy as np\n", hidden, seed=1234, timeout=timeout)
    run.start()
    kernel = threading.Thread(target=channel.serve, args=(str(run.path),), daemon=True)
    kernel.start()
    return run.finish()


def test_hidden_run_passes_fails_and_never_quotes_hidden_code(tmp_path, monkeypatch):
    ok = _run_hidden(tmp_path, monkeypatch, "from dlcourse.checks import student, grading_rng\n"
                     "assert student.Model(2).scale(3) == 6\nprint('hidden done', grading_rng('t').integers(10**9))\n")
    assert ok.passed and ok.stdout.startswith("hidden done") and ok.requests >= 3
    from dlcourse.checks import grading_rng, use_grading_seed
    with use_grading_seed(1234):
        assert ok.stdout.split()[-1] == str(grading_rng("t").integers(10**9)), "the student's seed is used"
    bare = _run_hidden(tmp_path, monkeypatch, "from dlcourse.checks import student\nx = 1\nassert student.len([1]) == 2\n")
    assert not bare.passed and bare.ename == "AssertionError" and bare.evalue == "(hidden test, line 3)"
    assert bare.traceback == [], "no trusted-side traceback (it would quote hidden lines)"
    raised = _run_hidden(tmp_path, monkeypatch, "from dlcourse.checks import student\nstudent.fails('todo')\n")
    assert raised.ename == "NotImplementedError" and any("fails" in t for t in raised.traceback)


def test_hidden_run_reports_a_kernel_that_never_answers(tmp_path):
    run = HiddenRun(tmp_path, "", "x = 1\n", seed=1, timeout=0.5)
    run.grace = 0
    run.start()
    verdict = run.finish()
    assert not verdict.passed and verdict.lost_kernel


def test_starting_a_hidden_run_never_follows_a_link_the_kernel_swapped_in(tmp_path):
    """The runtime folder is writable by the student's kernel, which can watch it and replace the
    grader's fresh socket with a link before the grader touches the path again: the grader must
    not change (or read) what the link points at. Simulated by winning the race on purpose."""
    canary = tmp_path / "grader-private"
    canary.write_text("secret")
    canary.chmod(0o600)
    run = HiddenRun(tmp_path / "runtime", "", "x = 1\n", seed=1, timeout=0.5)
    run.grace = 0
    (tmp_path / "runtime").mkdir()
    real = run._listener

    class RacingListener:  # bind, then the student's background thread wins the race
        def bind(self, path):
            real.bind(path)
            os.unlink(path)
            os.symlink(canary, path)

        def __getattr__(self, name):
            return getattr(real, name)

    run._listener = RacingListener()
    run.start()
    verdict = run.finish()
    assert stat.S_IMODE(canary.stat().st_mode) == 0o600, "the grader followed the student's link"
    assert canary.read_text() == "secret" and not verdict.passed
