"""The course secret and the per-student grading seeds drawn from it.

Hidden tests draw their inputs from the grading seed (``checks.grading_rng``). The grader runs
them, in its own process, with :func:`grading_seed` of (course secret, assignment, student id):
each student gets different inputs, a re-grade gets the same ones, and nobody can predict them
without the secret (kept in the grader's private folder, which student kernels cannot see; the
seed itself never reaches the kernel either)."""

from __future__ import annotations

import hashlib
import hmac
import os
import pathlib
import secrets


class SecretError(Exception):
    """The course secret file is unusable; the message says how to fix it."""


def grading_seed(secret: bytes, assignment: str, student_id: str) -> int:
    """Per-student seed of the hidden tests: stable across re-grades, unguessable without the secret."""
    digest = hmac.new(secret, f"{assignment}\0{student_id}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:4], "big")


def load_secret(path: pathlib.Path) -> bytes:
    """The secret in ``path``; a new random one is written there (mode 600) when the file does not exist."""
    path = pathlib.Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another grading process created it first
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
    value = path.read_text().strip()
    if len(value) < 16:
        raise SecretError(f"{path}: the course secret must be at least 16 characters")
    return value.encode()
