"""The status of one graded cell, as it travels through the grader and into ``breakdown.csv``.

Statuses travel as this enum, never as parsed message strings. The values are what
``breakdown.csv`` shows (write ``status.value``); autograder/README.md explains each one."""

from __future__ import annotations

import enum


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    KERNEL_DIED = "kernel-died"
    TAMPERED = "tampered"
    CORRUPT = "corrupt notebook"
    MISSING = "missing"
    REFUSED = "refused"
    ERROR = "error"
    MANUAL = "manual"

    def __str__(self) -> str:  # so f-strings and logs show the CSV value
        return self.value
