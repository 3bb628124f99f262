"""Files the grader writes and removes: sizes for the log, and removing what a student left."""

from __future__ import annotations

import os
import pathlib
import stat


def human_size(n: float) -> str:
    """1536 -> '1.5 KB' (powers of 1024, like --memory and --max-notebook-mb)."""
    if n < 1024:
        return f"{int(n)} B"
    for unit in ("KB", "MB", "GB", "TB"):
        n /= 1024
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}"


def remove_tree(path: pathlib.Path) -> tuple[int, int]:
    """Remove ``path`` and everything under it without following links, also folders made
    unreadable (chmod 000: given u+rwx back first); return (bytes, files) removed. Bytes are
    apparent sizes of regular files, each inode counted once."""
    path = str(path)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return (st.st_size if stat.S_ISREG(st.st_mode) else 0), 1
    size = files = 0
    seen: set[tuple[int, int]] = set()
    stack = [(path, False)]
    while stack:  # iterative: a student's folder may nest deeper than Python's recursion limit
        folder, emptied = stack.pop()
        if emptied:
            os.rmdir(folder)
            continue
        mode = stat.S_IMODE(os.lstat(folder).st_mode)
        if mode & 0o700 != 0o700:
            os.chmod(folder, mode | 0o700)
        stack.append((folder, True))
        with os.scandir(folder) as entries:
            for entry in entries:
                est = entry.stat(follow_symlinks=False)
                if stat.S_ISDIR(est.st_mode):
                    stack.append((entry.path, False))
                    continue
                if stat.S_ISREG(est.st_mode) and (est.st_dev, est.st_ino) not in seen:
                    seen.add((est.st_dev, est.st_ino))
                    size += est.st_size
                files += 1
                os.unlink(entry.path)
    return size, files
