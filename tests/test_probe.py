"""The sandbox probe's verdicts (autograder/probe.py), on reports as the probe prints them.
The probe itself runs in the real sandbox in tests/test_grading.py."""

from __future__ import annotations

import pytest

from autograder import probe

KERNEL_ENV = {"PATH", "HOME", "LANG"}
LAUNCH_ENV = {"PATH", "LANG"}
GOOD = {"uid": 65534, "gid": 65534, "cap_eff": "0000000000000000", "cap_bnd": "0000000000000000",
        "unshare_mount": False, "unshare_user": False, "remount_rw": False, "umount": [], "ptrace_init": False,
        "visible": [], "writable_system": [], "foreign_processes": [], "environ_1": [],
        "environ_self": ["HOME", "LANG", "PATH"], "scratch_writable": True, "network": False, "data_readable": True}


def verdict(**changes):
    return probe.problems(dict(GOOD, **changes), kernel_env_keys=KERNEL_ENV, launch_env_keys=LAUNCH_ENV)


def test_a_sandbox_that_holds_has_no_problems():
    assert verdict() == []


@pytest.mark.parametrize("changes, words", [
    (dict(uid=0, gid=0), "root"),
    (dict(cap_eff="000001fffeffffff"), "keeps capabilities"),
    (dict(unshare_mount=True), "mount namespace"),
    (dict(unshare_user=True), "user namespace"),
    (dict(remount_rw=True), "remount"),
    (dict(umount=["/home"]), "unmount hidden folders: /home"),
    (dict(ptrace_init=True), "ptrace"),
    (dict(visible=["/srv/out/course-secret"]), "private files"),
    (dict(writable_system=["/proc/sys/kernel/core_pattern"]), "core_pattern"),
    (dict(foreign_processes=["2"]), "/proc/PID/mem"),
    (dict(environ_1=["PATH", "AUTOGRADER_SETTINGS"]), "AUTOGRADER_SETTINGS"),
    (dict(environ_self=["HOME", "LANG", "PATH", "SSH_AUTH_SOCK"]), "SSH_AUTH_SOCK"),
    (dict(network=True), "network"),
    (dict(scratch_writable=False), "scratch"),
    (dict(data_readable=False), "DLCOURSE_DATA"),
])
def test_each_lost_protection_is_named(changes, words):
    found = verdict(**changes)
    assert len(found) == 1 and words in found[0], found


def test_the_report_line_is_parsed():
    assert probe.parse('noise\nPROBE {"uid": 65534}\n') == {"uid": 65534}
    assert probe.parse("no report") is None
