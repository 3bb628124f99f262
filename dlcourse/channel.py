"""The data-only channel between hidden tests and the student's code (every notebook's hidden tests).

At grading time the hidden part of a test cell runs in the grader's own, trusted process,
never in the student's kernel. It reaches the student's definitions only through
:data:`student`: ``student.accuracy_from_logits(z, y)`` sends the function's name and its
arguments to the kernel, which calls it and sends back the result. What crosses is data,
never code or pickles:

- ``None``, ``bool``, ``int``, ``float``, ``str``, tuples, lists and dicts of them;
- bytes; NumPy arrays and scalars and PyTorch tensors of numeric or boolean dtype, as raw bytes
  with a dtype and shape checked on arrival (TensorFlow tensors arrive as NumPy arrays);
- NumPy and PyTorch dtypes, slices, and NumPy random generators (as a copy of their state: the
  student's draws do not advance the test's generator);
- anything else in the kernel (a module, a layer, a callback object, a tensor that requires
  grad) stays there and arrives as a :class:`Remote` handle: its attributes, calls, items,
  ``len`` and iteration are further requests, and it can be passed back as an argument;
- arguments may also name classes and functions of torch, keras, numpy, math and dlcourse
  (``activation=torch.nn.Tanh``), which the kernel imports itself.

A value the student's code returns is rebuilt from those bytes by this module, so what a hidden
test compares is a plain Python/NumPy/torch object: an ``__eq__`` that always says True, an
ndarray subclass or a tensor with patched methods cannot come back. An exception raised by the
student's code arrives as an exception of the same built-in class (a ``ValueError`` subclass
arrives as a ``ValueError``) with the student's message, so ``checks.assert_raises`` works as
in the kernel.

Outside grading (Validate on a master, ``python -m autograder verify``, the seed sweep)
:data:`student` looks names up in the notebook's own namespace and still sends every value
through the same encoding, so a hidden test that works for the author works at grading time.
"""

from __future__ import annotations

import builtins
import contextlib
import contextvars
import functools
import importlib
import itertools
import json
import socket
import struct
import sys
import time
import traceback as _traceback
import types
import weakref

import numpy as np

__all__ = ["student", "Remote", "Channel", "ChannelError", "ChannelTimeout", "StudentRaised",
           "serve", "using", "keep", "remote_type"]

MAX_BYTES = 256 * 2**20          # one message, header and arrays together
MAX_HEADER_BYTES = 16 * 2**20
MAX_ITEMS = 200_000              # values in one message (array elements do not count)
MAX_TEXT = 2**20                 # one string, and one exception message
REF_PACKAGES = ("torch", "keras", "numpy", "math", "dlcourse", "tensorflow")
_DTYPES = {np.dtype(name).str: np.dtype(name) for name in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128")}
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")
_EXCEPTIONS = {name: cls for name, cls in vars(builtins).items()
               if isinstance(cls, type) and issubclass(cls, BaseException)}
_FRAME_HEAD = struct.Struct("!II")
_BUFFER_HEAD = struct.Struct("!Q")


class ChannelError(BaseException):
    """The student's kernel did not answer as the channel requires (closed, malformed, too big).

    A ``BaseException``, so a hidden test's ``except Exception`` cannot swallow it."""


class ChannelTimeout(ChannelError):
    """The student's kernel did not answer before the test's deadline."""


class StudentRaised(Exception):
    """Mixed into every exception rebuilt from one the student's code raised.

    ``student_traceback`` holds the kernel's traceback lines (the student's own frames)."""

    student_type = "Exception"
    student_traceback: list[str] = []


_raised_classes: dict[tuple[str, type], type] = {}


def _raised_class(name: str, base: type) -> type:
    key = (name, base)
    if key not in _raised_classes:
        cls_name = name if name.isidentifier() else base.__name__
        try:
            cls = type(cls_name, (base, StudentRaised), {"student_type": name})
        except TypeError:  # a base whose layout refuses the mixin
            cls = type(cls_name, (StudentRaised,), {"student_type": name})
        cls.__module__ = "student"
        _raised_classes[key] = cls
    return _raised_classes[key]


# --------------------------------------------------------------------------- framing


def _pack(header, buffers: list[bytes]) -> bytes:
    text = json.dumps(header, allow_nan=True, separators=(",", ":")).encode("utf-8")
    parts = [_FRAME_HEAD.pack(len(text), len(buffers)), text]
    for buf in buffers:
        parts += [_BUFFER_HEAD.pack(len(buf)), buf]
    return b"".join(parts)


def _unpack(read, max_bytes: int):
    """Read one message with ``read(n) -> bytes-like``; every length is checked before reading."""
    header_len, n_buffers = _FRAME_HEAD.unpack(bytes(read(_FRAME_HEAD.size)))
    if header_len > min(MAX_HEADER_BYTES, max_bytes):
        raise ChannelError(f"the student's kernel sent a {header_len}-byte header (limit "
                           f"{min(MAX_HEADER_BYTES, max_bytes)})")
    if n_buffers > MAX_ITEMS:
        raise ChannelError(f"the student's kernel sent {n_buffers} arrays in one message (limit {MAX_ITEMS})")
    try:
        header = json.loads(bytes(read(header_len)).decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise ChannelError(f"the student's kernel sent a malformed message ({type(error).__name__})") from None
    budget = max_bytes - header_len
    buffers = []
    for _ in range(n_buffers):
        (size,) = _BUFFER_HEAD.unpack(bytes(read(_BUFFER_HEAD.size)))
        if size > budget:
            raise ChannelError(f"the student's kernel sent more than {max_bytes // 2**20} MB in one message")
        budget -= size
        buffers.append(read(size))
    return header, buffers


# --------------------------------------------------------------------------- values


def _torch():
    return sys.modules.get("torch")


def _is_tensorflow_tensor(x) -> bool:
    return type(x).__module__.startswith("tensorflow") and hasattr(x, "numpy") and hasattr(x, "dtype")


class _Encoder:
    """Turns a value into JSON plus raw buffers. ``handle(obj)`` is asked for what is not data."""

    def __init__(self, handle):
        self.handle = handle
        self.buffers: list[bytes] = []
        self.items = 0

    def array(self, a: np.ndarray, as_: str, **extra):
        a = a if a.flags.c_contiguous else a.copy(order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        dtype = a.dtype.newbyteorder("=") if a.dtype.byteorder not in "=|" else a.dtype
        if dtype.str not in _DTYPES:
            return None
        a = a.astype(dtype, copy=False)
        self.buffers.append(a.tobytes())
        return {"$": "array", "buf": len(self.buffers) - 1, "dtype": dtype.str, "shape": list(a.shape),
                "as": as_, **extra}

    def encode(self, x, depth: int = 0):
        self.items += 1
        if self.items > MAX_ITEMS or depth > 64:
            raise ValueError(f"too many or too deeply nested values to send (limit {MAX_ITEMS} values, depth 64)")
        torch = _torch()
        if x is None:
            return None
        if isinstance(x, bool):
            return bool(x)
        if isinstance(x, np.generic):
            found = self.array(np.asarray(x), "scalar")
            return found if found is not None else self.handle(x)
        if isinstance(x, int):
            return int(x)
        if isinstance(x, float):
            return float(x)
        if isinstance(x, (bytes, bytearray)):
            self.buffers.append(bytes(x))
            return {"$": "bytes", "buf": len(self.buffers) - 1}
        if isinstance(x, str):
            if len(x) > MAX_TEXT:
                raise ValueError(f"a string of {len(x)} characters is too long to send (limit {MAX_TEXT})")
            return str(x)
        if isinstance(x, np.ndarray):
            found = self.array(np.asarray(x), "numpy") if x.dtype != object else None
            return found if found is not None else self.handle(x)
        if torch is not None and isinstance(x, torch.Tensor):
            return self.tensor(x, torch)
        if _is_tensorflow_tensor(x):
            try:
                found = self.array(np.asarray(x.numpy()), "numpy")
            except Exception:  # noqa: BLE001 - a symbolic tensor has no value: keep it remote
                found = None
            return found if found is not None else self.handle(x)
        if isinstance(x, np.random.Generator):  # sent as a copy of its state
            return {"$": "generator", "state": self.encode(x.bit_generator.state, depth + 1)}
        if isinstance(x, np.dtype):
            return {"$": "dtype", "lib": "numpy", "name": x.str}
        if torch is not None and isinstance(x, torch.dtype):
            return {"$": "dtype", "lib": "torch", "name": str(x).removeprefix("torch.")}
        if isinstance(x, slice):
            return {"$": "slice", "items": [self.encode(v, depth + 1) for v in (x.start, x.stop, x.step)]}
        if isinstance(x, tuple):
            return {"$": "tuple", "items": [self.encode(v, depth + 1) for v in x]}
        if isinstance(x, list):
            return [self.encode(v, depth + 1) for v in x]
        if isinstance(x, dict):
            keys = list(x.keys())
            if all(k is None or isinstance(k, (str, int, float, tuple)) for k in keys):
                return {"$": "dict", "items": [[self.encode(k, depth + 1), self.encode(x[k], depth + 1)] for k in keys]}
        return self.handle(x)

    def tensor(self, t, torch):
        if t.requires_grad or type(t) not in (torch.Tensor, torch.nn.Parameter) or t.is_sparse:
            return self.handle(t)
        try:
            a = t.detach().cpu().numpy()
        except (TypeError, RuntimeError):  # bfloat16 and other dtypes NumPy lacks
            return self.handle(t)
        found = self.array(a, "torch")
        return found if found is not None else self.handle(t)


class _Decoder:
    """Rebuilds what an :class:`_Encoder` wrote; only the tags below exist, checked as they come."""

    def __init__(self, buffers, handle=None, ref=None, callback=None):
        self.buffers = buffers
        self.handle, self.ref, self.callback = handle, ref, callback
        self.items = 0

    def decode(self, x, depth: int = 0):
        self.items += 1
        if self.items > MAX_ITEMS or depth > 66:
            raise ChannelError(f"the message holds more than {MAX_ITEMS} values or is nested too deeply")
        if x is None or isinstance(x, (bool, int, float, str)):
            return x
        if isinstance(x, list):
            return [self.decode(v, depth + 1) for v in x]
        if not isinstance(x, dict):
            raise ChannelError(f"the message holds a value of unknown kind {type(x).__name__}")
        tag = x.get("$")
        if tag == "tuple":
            return tuple(self.decode(v, depth + 1) for v in self._list(x, "items"))
        if tag == "dict":
            out = {}
            for pair in self._list(x, "items"):
                if not (isinstance(pair, list) and len(pair) == 2):
                    raise ChannelError("the message holds a malformed dict entry")
                key = self.decode(pair[0], depth + 1)
                try:
                    out[key] = self.decode(pair[1], depth + 1)
                except TypeError:
                    raise ChannelError("the message holds an unhashable dict key") from None
            return out
        if tag == "array":
            return self.array(x)
        if tag == "bytes":
            index = x.get("buf")
            if not (isinstance(index, int) and 0 <= index < len(self.buffers)):
                raise ChannelError("the message holds bytes without their data")
            return bytes(self.buffers[index])
        if tag == "dtype":
            return self.dtype(x)
        if tag == "generator":
            return self.generator(self.decode(x.get("state"), depth + 1))
        if tag == "slice":
            items = self._list(x, "items")
            if len(items) != 3:
                raise ChannelError("the message holds a malformed slice")
            return slice(*(self.decode(v, depth + 1) for v in items))
        if tag == "handle" and self.handle is not None:
            return self.handle(x)
        if tag == "ref" and self.ref is not None:
            return self.ref(x)
        if tag == "callback" and self.callback is not None:
            return self.callback(x)
        raise ChannelError(f"the message holds a value tagged {str(tag)[:40]!r}, which is not allowed here")

    @staticmethod
    def _list(x, key):
        value = x.get(key)
        if not isinstance(value, list):
            raise ChannelError(f"the message holds a malformed {x.get('$')!r}")
        return value

    def array(self, x):
        dtype, shape, index = _DTYPES.get(x.get("dtype")), x.get("shape"), x.get("buf")
        if dtype is None:
            raise ChannelError(f"the message holds an array of dtype {str(x.get('dtype'))[:20]!r}, which is not allowed")
        if not (isinstance(shape, list) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
                and len(shape) <= 32):
            raise ChannelError("the message holds an array with a malformed shape")
        if not (isinstance(index, int) and 0 <= index < len(self.buffers)):
            raise ChannelError("the message holds an array without its data")
        buf = self.buffers[index]
        count = 1
        for n in shape:
            count *= n
        if count * dtype.itemsize != len(buf):
            raise ChannelError(f"an array of shape {tuple(shape)} and dtype {dtype} needs "
                               f"{count * dtype.itemsize} bytes, the message holds {len(buf)}")
        a = np.frombuffer(buf, dtype=dtype, count=count).reshape(shape)
        if not a.flags.writeable:
            a = a.copy()
        kind = x.get("as")
        if kind == "scalar":
            return a.reshape(())[()]
        if kind == "torch":
            torch = importlib.import_module("torch")
            t = torch.from_numpy(a)
            if x.get("requires_grad") and t.is_floating_point():
                t.requires_grad_(True)
            return t
        return a

    @staticmethod
    def generator(state):
        name = state.get("bit_generator") if isinstance(state, dict) else None
        if name not in _BIT_GENERATORS:
            raise ChannelError(f"the message holds a random generator of unknown kind {str(name)[:20]!r}")
        generator = np.random.Generator(getattr(np.random, name)())
        try:
            generator.bit_generator.state = state
        except (TypeError, ValueError, KeyError) as error:
            raise ChannelError(f"the message holds a malformed random generator state ({error})") from None
        return generator

    @staticmethod
    def dtype(x):
        name = x.get("name")
        if x.get("lib") == "numpy" and name in _DTYPES:
            return _DTYPES[name]
        if x.get("lib") == "torch" and isinstance(name, str) and name.isidentifier():
            found = getattr(importlib.import_module("torch"), name, None)
            if found is not None and type(found).__name__ == "dtype":
                return found
        raise ChannelError(f"the message holds an unknown dtype {str(name)[:20]!r}")


# --------------------------------------------------------------------------- the kernel's side


def _reference(x) -> dict | None:
    """``{"$": "ref", ...}`` for a class or function of an allowed package, found again by name."""
    module, qualname = getattr(x, "__module__", None), getattr(x, "__qualname__", None)
    if not (isinstance(module, str) and isinstance(qualname, str)) or module.split(".")[0] not in REF_PACKAGES:
        return None
    if "<" in qualname:
        return None
    return {"$": "ref", "module": module, "qualname": qualname}


def _resolve_reference(x):
    module, qualname = x.get("module"), x.get("qualname")
    if not (isinstance(module, str) and isinstance(qualname, str) and module.split(".")[0] in REF_PACKAGES):
        raise ChannelError("a reference to something outside torch, keras, numpy, math and dlcourse")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _namespace() -> dict:
    """The notebook's namespace: IPython's user namespace in a kernel, ``__main__`` otherwise."""
    try:
        from IPython import get_ipython
        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        return shell.user_ns
    return vars(sys.modules["__main__"])


def _student_traceback(error: BaseException) -> list[str]:
    """Where the student's code raised, one line per frame as IPython names them (``Cell In[5],
    line 3, in accuracy``): cheap to build (IPython's own formatter highlights source and takes
    tens of milliseconds), and all the grader reads from it is which function raised."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    cells = {}
    try:
        from IPython import get_ipython
        shell = get_ipython()
        cells = getattr(getattr(shell, "compile", None), "_filename_map", {}) or {}
    except Exception:  # noqa: BLE001 - outside IPython: plain file names
        pass
    lines = []
    for frame, lineno in _traceback.walk_tb(tb):
        code = frame.f_code
        where = f"Cell In[{cells[code.co_filename]}]" if code.co_filename in cells else f"File {code.co_filename}"
        lines.append(f"{where}, line {lineno}, in {code.co_name}")
    return lines + [f"{type(error).__name__}: {error}"]


class _Server:
    """Answers requests on behalf of the student's code: in the kernel, or in-process."""

    def __init__(self, namespace: dict):
        self.namespace = namespace
        self.objects: dict[int, object] = {}
        self.ids = itertools.count(1)
        self.call_back = None  # (header, buffers) -> (header, buffers): a request to the tests' side

    def _callback(self, x):
        number = x.get("id")
        if not isinstance(number, int) or self.call_back is None:
            raise ChannelError("a malformed callback")
        return _Callback(self, number, _printable(x.get("name"), 200))

    def _handle(self, obj):
        number = next(self.ids)
        self.objects[number] = obj
        cls = type(obj)
        found = {"$": "handle", "id": number, "type": f"{cls.__module__}.{cls.__qualname__}"}
        name = getattr(obj, "__qualname__", None) if callable(obj) else None
        if isinstance(name, str):
            found["name"] = name[:200]
        return found

    def _object(self, x):
        number = x.get("id")
        if number not in self.objects:
            raise ChannelError(f"no object {number!r} in the student's kernel (released, or from another test)")
        return self.objects[number]

    def _lookup(self, name):
        if name in self.namespace:
            return self.namespace[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise NameError(f"name {name!r} is not defined in your notebook (run the cell that defines it)")

    def answer(self, header, buffers) -> bytes:
        for number in header.get("release") or ():
            self.objects.pop(number, None)
        try:
            args = _Decoder(buffers, handle=self._object, ref=_resolve_reference, callback=self._callback)
            value = self._dispatch(header, args)
        except KeyboardInterrupt:
            raise
        except ChannelError as error:  # the request itself was wrong: not the student's error
            return _pack({"error": {"channel": str(error)[:500]}}, [])
        except BaseException as error:  # noqa: BLE001 - the student's error, reported to the test
            return self._report(error)
        encoder = _Encoder(self._handle)
        try:
            body = encoder.encode(value) if not header.get("keep") else self._handle(value)
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - what the student returned cannot be sent
            return _pack({"error": {"channel": f"the result cannot be sent: {type(error).__name__}: "
                                               f"{str(error)[:500]}"}}, [])
        return _pack({"ok": body}, encoder.buffers)

    @staticmethod
    def _report(error: BaseException) -> bytes:
        try:
            bases = [c.__name__ for c in type(error).__mro__ if _EXCEPTIONS.get(c.__name__) is c]
            message = str(error)[:MAX_TEXT]
            lines = [str(line)[:4000] for line in _student_traceback(error)[-40:]]
        except Exception:  # noqa: BLE001 - an exception whose __str__ or class lies
            bases, message, lines = ["Exception"], "(the exception could not be described)", []
        return _pack({"error": {"type": _printable(type(error).__name__, 80), "bases": bases,
                                "message": message, "traceback": lines}}, [])

    def _dispatch(self, header, args: _Decoder):
        op = header.get("op")
        if op == "global":
            return self._lookup(header.get("name"))
        target = self._object(header.get("obj") or {})
        if op == "getattr":
            return getattr(target, header.get("name"))
        if op == "setattr":
            setattr(target, header.get("name"), args.decode(header.get("value")))
            return None
        if op == "call":
            call_args = args.decode(header.get("args") or [])
            call_kwargs = args.decode(header.get("kwargs") or {"$": "dict", "items": []})
            if not (isinstance(call_args, list) and isinstance(call_kwargs, dict)
                    and all(isinstance(k, str) for k in call_kwargs)):
                raise ChannelError("a malformed call")
            return target(*call_args, **call_kwargs)
        if op == "getitem":
            return target[args.decode(header.get("key"))]
        if op == "setitem":
            target[args.decode(header.get("key"))] = args.decode(header.get("value"))
            return None
        if op == "len":
            return len(target)
        if op == "iter":
            return list(itertools.islice(iter(target), MAX_ITEMS))
        if op == "type":
            cls = type(target)
            return [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__]
        raise ChannelError(f"unknown request {str(op)[:40]!r}")


class _Callback:
    """A function of the tests, passed to the student's code: calling it asks the tests' side to
    run it on these arguments (sent as data, like every argument) and returns its answer."""

    def __init__(self, server: _Server, number: int, name: str):
        self.server, self.number, self.__name__ = server, number, name or "callback"
        self.__qualname__ = self.__name__

    def __call__(self, *args, **kwargs):
        encoder = _Encoder(self.server._handle)
        header = {"callback": self.number, "args": encoder.encode(list(args)), "kwargs": encoder.encode(dict(kwargs))}
        answer, buffers = self.server.call_back(header, encoder.buffers)
        if not isinstance(answer, dict):
            raise ChannelError("a malformed answer to a callback")
        if "error" in answer:
            info = answer["error"] if isinstance(answer["error"], dict) else {}
            bases = [b for b in info.get("bases") or () if b in _EXCEPTIONS and issubclass(_EXCEPTIONS[b], Exception)]
            raise (_EXCEPTIONS[bases[0]] if bases else Exception)(str(info.get("message", ""))[:MAX_TEXT])
        decoder = _Decoder(buffers, handle=self.server._object, ref=_resolve_reference, callback=self.server._callback)
        return decoder.decode(answer.get("ok"))

    def __repr__(self):
        return f"<the tests' function {self.__name__}>"


class _Reader:
    def __init__(self, data):
        self.view, self.at = memoryview(data), 0

    def __call__(self, n):
        if self.at + n > len(self.view):
            raise ChannelError("the message ended early")
        chunk = self.view[self.at: self.at + n]
        self.at += n
        return chunk


def serve(path: str) -> None:
    """Answer the grader's requests over the unix socket at ``path`` until it says done.

    The grader runs this in the student's kernel while a test's hidden part runs outside it."""
    server = _Server(_namespace())
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    stream = _SocketStream(sock, deadline=None)

    def call_back(header, buffers):
        sock.sendall(_pack(header, buffers))
        while True:
            answer, answer_buffers = _unpack(stream.read, MAX_BYTES)
            if "op" not in answer:
                return answer, answer_buffers
            if answer["op"] == "done":  # the tests ended while their function was running
                raise ChannelError("the tests ended during a callback")
            sock.sendall(server.answer(answer, answer_buffers))  # the tests' function asks in turn

    server.call_back = call_back
    try:
        while True:
            header, buffers = _unpack(stream.read, MAX_BYTES)
            if header.get("op") == "done":
                return
            sock.sendall(server.answer(header, buffers))
    except (ChannelError, OSError):  # the tests hung up (their deadline passed): nothing left to answer
        return
    finally:
        server.objects.clear()
        sock.close()


# --------------------------------------------------------------------------- the tests' side


class _SocketStream:
    def __init__(self, sock: socket.socket, deadline: float | None):
        self.sock, self.deadline = sock, deadline

    def read(self, n: int):
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise ChannelTimeout("the student's code did not return before the test's time ran out")
                self.sock.settimeout(left)
            try:
                count = self.sock.recv_into(view[got:], n - got)
            except socket.timeout:
                raise ChannelTimeout("the student's code did not return before the test's time ran out") from None
            except OSError as error:
                raise ChannelError(f"the connection to the student's kernel failed ({error})") from None
            if count == 0:
                raise ChannelError("the student's kernel closed the connection (it was interrupted, or "
                                   "its code ended the grader's request)")
            got += count
        return buf


class Channel:
    """The tests' end: sends requests, rebuilds answers, keeps the handles it was given."""

    def __init__(self, exchange, close=None, max_bytes: int = MAX_BYTES):
        self._exchange = exchange          # bytes -> (header, buffers)
        self._close = close
        self.max_bytes = max_bytes
        self._released: list[int] = []
        self._callbacks: dict[int, object] = {}
        self.requests = 0
        # Handles of the notebook's functions and classes, by name, for the life of this channel
        # (one hidden part at grading time): `student.f(x)` in a loop then costs one request a
        # call. Off in-process, where the notebook may redefine a name between two runs.
        self.globals: dict[str, Remote] | None = None

    @classmethod
    def over_socket(cls, sock: socket.socket, deadline: float, max_bytes: int = MAX_BYTES) -> "Channel":
        stream = _SocketStream(sock, deadline)

        def exchange(message: bytes):
            try:
                sock.sendall(message)
            except OSError as error:
                raise ChannelError(f"the connection to the student's kernel failed ({error})") from None
            return _unpack(stream.read, max_bytes)

        channel = cls(exchange, close=lambda: _close_socket(sock), max_bytes=max_bytes)
        channel.globals = {}
        return channel

    @classmethod
    def in_process(cls, namespace: dict | None = None) -> "Channel":
        server = _Server(namespace if namespace is not None else _namespace())

        def exchange(message: bytes):
            answer = server.answer(*_unpack(_Reader(message), len(message)))
            return _unpack(_Reader(answer), len(answer))

        channel = cls(exchange, close=server.objects.clear)
        channel.server = server
        server.call_back = lambda header, buffers: _unpack(_Reader(m := channel._run_callback(header, buffers)), len(m))
        return channel

    def close(self):
        """Tell the kernel the tests are done (over a socket), or drop the in-process handles."""
        if self._close is not None:
            self._close()

    def request(self, op: str, *, keep: bool = False, **fields):
        self.requests += 1
        encoder = _Encoder(self._argument)
        header = {"op": op, **{k: encoder.encode(v) if k in ("args", "kwargs", "key", "value") else v
                               for k, v in fields.items()}}
        if keep:
            header["keep"] = True
        if self._released:
            header["release"] = list(self._released)
            self._released.clear()  # in place: the handles' finalizers append to this very list
        answer, buffers = self._exchange(_pack(header, encoder.buffers))
        while isinstance(answer, dict) and "callback" in answer:  # the student's code calls one of ours
            answer, buffers = self._exchange(self._run_callback(answer, buffers))
        if not isinstance(answer, dict):
            raise ChannelError("the student's kernel sent a malformed answer")
        if "error" in answer:
            info = answer["error"]
            if isinstance(info, dict) and "channel" in info:
                raise ChannelError(f"the student's kernel could not answer: {_printable(info['channel'], 600)}")
            raise self._error(info)
        if "ok" not in answer:
            raise ChannelError("the student's kernel sent a malformed answer")
        return _Decoder(buffers, handle=self._remote).decode(answer["ok"])

    def _argument(self, x):
        if isinstance(x, Remote):
            if object.__getattribute__(x, "_channel") is not self:
                raise TypeError("a handle from another test's kernel connection cannot be sent")
            return {"$": "handle", "id": object.__getattribute__(x, "_id")}
        torch = _torch()
        if torch is not None and isinstance(x, torch.Tensor):
            raise TypeError("a tensor that requires grad cannot be sent: send x.detach(), or make the leaf in "
                            "the kernel: keep(student.torch.tensor, x, requires_grad=True)")
        ref = _reference(x) if isinstance(x, type) or callable(x) else None
        if ref is not None:
            return ref
        if isinstance(x, (types.FunctionType, types.MethodType, functools.partial)):
            number = len(self._callbacks) + 1
            self._callbacks[number] = x
            return {"$": "callback", "id": number, "name": getattr(x, "__qualname__", "callback")}
        raise TypeError(f"a {type(x).__module__}.{type(x).__qualname__} cannot be sent to the student's kernel: "
                        "send its data (arrays, numbers, lists), or create it there "
                        "(student.torch.nn.Linear(3, 2)) and pass that handle")

    def _run_callback(self, header, buffers) -> bytes:
        """Run one of the tests' functions for the student's code: data in, data out."""
        function = self._callbacks.get(header.get("callback"))
        try:
            if function is None:
                raise LookupError("the student's code called a function the tests never passed it")
            decoder = _Decoder(buffers, handle=self._remote)
            args = decoder.decode(header.get("args") or [])
            kwargs = decoder.decode(header.get("kwargs") or {"$": "dict", "items": []})
            if not (isinstance(args, list) and isinstance(kwargs, dict) and all(isinstance(k, str) for k in kwargs)):
                raise TypeError("a malformed call of the tests' function")
            value = function(*args, **kwargs)
            encoder = _Encoder(self._argument)
            return _pack({"ok": encoder.encode(value)}, encoder.buffers)
        except Exception as error:  # noqa: BLE001 - raised to the student's code, as the function would
            bases = [c.__name__ for c in type(error).__mro__ if _EXCEPTIONS.get(c.__name__) is c]
            return _pack({"error": {"type": type(error).__name__, "bases": bases, "message": str(error)[:MAX_TEXT]}}, [])

    def _remote(self, x):
        number, type_name = x.get("id"), x.get("type")
        if not isinstance(number, int):
            raise ChannelError("the student's kernel sent a malformed handle")
        remote = object.__new__(Remote)
        object.__setattr__(remote, "_channel", self)
        object.__setattr__(remote, "_id", number)
        object.__setattr__(remote, "_type", _printable(type_name))
        object.__setattr__(remote, "_name", _printable(x["name"]) if isinstance(x.get("name"), str) else None)
        weakref.finalize(remote, self._released.append, number)
        return remote

    @staticmethod
    def _error(info) -> BaseException:
        if not isinstance(info, dict):
            return ChannelError("the student's kernel sent a malformed error")
        name = _printable(info.get("type"), 80)
        bases = info.get("bases") if isinstance(info.get("bases"), list) else []
        base = next((_EXCEPTIONS[b] for b in bases if isinstance(b, str) and b in _EXCEPTIONS
                     and issubclass(_EXCEPTIONS[b], Exception)), Exception)
        cls = _raised_class(name, base)
        message = info.get("message")
        error = cls(message[:MAX_TEXT] if isinstance(message, str) else "")
        lines = info.get("traceback")
        error.student_traceback = [str(line)[:4000] for line in lines[:40]] if isinstance(lines, list) else []
        return error


def _close_socket(sock):
    with contextlib.suppress(OSError):
        sock.sendall(_pack({"op": "done"}, []))
    sock.close()


def _printable(text, limit: int = 200) -> str:
    text = text if isinstance(text, str) else "object"
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


_ALLOWED_DUNDERS = {"__enter__", "__exit__"}


class Remote:
    """An object that lives in the student's kernel. Attribute access, calls, items, ``len`` and
    iteration are requests; the answers are data or further handles. It has no truth value and
    equals only itself: fetch data from it to compare."""

    __slots__ = ("_channel", "_id", "_type", "_name", "__weakref__")

    @property
    def __name__(self):  # what messages call it: the student's function or class name
        return object.__getattribute__(self, "_name") or f"student's {object.__getattribute__(self, '_type')}"

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # NumPy and Python probe these; never ask the kernel
        return _channel_of(self).request("getattr", obj=_ref(self), name=name)

    def __setattr__(self, name, value):
        _channel_of(self).request("setattr", obj=_ref(self), name=name, value=value)

    def __call__(self, *args, **kwargs):
        return _channel_of(self).request("call", obj=_ref(self), args=list(args), kwargs=dict(kwargs))

    def __getitem__(self, key):
        return _channel_of(self).request("getitem", obj=_ref(self), key=key)

    def __setitem__(self, key, value):
        _channel_of(self).request("setitem", obj=_ref(self), key=key, value=value)

    def __len__(self):
        n = _channel_of(self).request("len", obj=_ref(self))
        if not isinstance(n, int) or n < 0:
            raise TypeError(f"len() of the student's object returned {type(n).__name__}, not a size")
        return n

    def __iter__(self):
        items = _channel_of(self).request("iter", obj=_ref(self))
        if not isinstance(items, list):
            raise TypeError("iterating the student's object did not give a list of items")
        return iter(items)

    def __enter__(self):
        method = _method(self, "__enter__")  # held until answered: a released handle is gone
        return _channel_of(self).request("call", obj=_ref(method), args=[], kwargs={})

    def __exit__(self, *exc):
        method = _method(self, "__exit__")
        _channel_of(self).request("call", obj=_ref(method), args=[None, None, None], kwargs={})
        return False

    def __bool__(self):
        raise TypeError(f"{self!r} lives in the student's kernel and has no truth value here: "
                        "fetch a value from it (an attribute, a call's result) and test that")

    def __repr__(self):
        return f"<student's {object.__getattribute__(self, '_type')} object>"

    def __reduce__(self):
        raise TypeError("a handle to the student's kernel cannot be pickled or copied")


def _channel_of(remote) -> Channel:
    return object.__getattribute__(remote, "_channel")


def _ref(remote) -> dict:
    return {"$": "handle", "id": object.__getattribute__(remote, "_id")}


def _method(remote, name) -> Remote:
    found = _channel_of(remote).request("getattr", obj=_ref(remote), name=name, keep=True)
    return found


def keep(function, *args, **kwargs) -> Remote:
    """Call ``function`` (a handle) in the student's kernel and keep the result there, as a handle,
    even if it is data: ``x = keep(student.torch.randn, 4, 3, requires_grad=True)``."""
    if not isinstance(function, Remote):
        raise TypeError("keep() calls a handle from `student` (student.NAME or an attribute of one)")
    return _channel_of(function).request("call", obj=_ref(function), args=list(args), kwargs=dict(kwargs), keep=True)


def remote_type(remote: Remote) -> list[str]:
    """The qualified class names of a handle's object, most specific first (as the kernel reports
    them: use it for messages, and check behaviour rather than trusting it)."""
    names = _channel_of(remote).request("type", obj=_ref(remote))
    return [str(n) for n in names] if isinstance(names, list) else []


# --------------------------------------------------------------------------- `student`

_current: contextvars.ContextVar[Channel | None] = contextvars.ContextVar("dlcourse_channel", default=None)
_in_process: Channel | None = None


@contextlib.contextmanager
def using(channel: Channel):
    """Make :data:`student` talk through ``channel`` (the grader does this around hidden tests)."""
    token = _current.set(channel)
    try:
        yield channel
    finally:
        _current.reset(token)


def current() -> Channel:
    """The channel :data:`student` talks through: the grader's, or one into this process's notebook."""
    global _in_process
    channel = _current.get()
    if channel is not None:
        return channel
    if _in_process is None:
        _in_process = Channel.in_process()
    return _in_process


class _Student:
    """``student.NAME`` is what the name ``NAME`` holds in the student's notebook: data as a value,
    anything else (a function, a class, a module) as a :class:`Remote` handle."""

    __slots__ = ()

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        channel = current()
        if channel.globals is not None and name in channel.globals:
            return channel.globals[name]
        found = channel.request("global", name=name)
        if channel.globals is not None and isinstance(found, Remote) and object.__getattribute__(found, "_name"):
            channel.globals[name] = found  # a function or class: the same object for this hidden part
        return found

    def __repr__(self):
        return "<the student's notebook>"


student = _Student()
