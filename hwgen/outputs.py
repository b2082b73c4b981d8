"""Where commands write: every destination checked before any long step, folders replaced whole.

A command that writes files checks its destinations first (:func:`check_output_dir`,
:func:`check_output_file`), so a mistake costs no build time. It then writes into a private
folder beside the destination (:func:`replacing_dir`) that replaces the destination in one
rename when the work is done: an interrupted or failed run leaves nothing behind, and a rebuild
never mixes the files of two designs.

A private folder's name carries the host and process that made it
(``.<name>.<host>-<pid>.<random>.partial``), so a later run can remove the ones whose process
died without cleaning up (:func:`remove_abandoned`).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["OutputError", "check_output_dir", "check_output_file", "check_writable_dir",
           "replacing_dir",
           "private_dir", "remove_abandoned", "write_file_atomically"]


class OutputError(ValueError):
    """A destination that cannot be written; the message names it and says why."""


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists():
        path = path.parent
    return path


def _check_can_create_in(path: Path, what: str) -> None:
    """Raise unless files can be created at ``path`` (whose missing parents are made later)."""
    _probe(_existing_ancestor(path.parent), path, what)


def check_writable_dir(path: Path, what: str) -> None:
    """Check that files can be written in folder ``path`` (created if missing).

    Raises
    ------
    OutputError
        If ``path`` or an ancestor is a file, or the folder cannot be written.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a file, not a folder")
    _probe(_existing_ancestor(path), path, what)


def _probe(anchor: Path, path: Path, what: str) -> None:
    if not anchor.is_dir():
        raise OutputError(f"{what} {str(path)!r}: {str(anchor)!r} is a file, not a folder")
    try:  # the only reliable test: as root, os.access says yes even on read-only mounts
        Path(tempfile.mkdtemp(prefix=".hwgen-write-test.", dir=anchor)).rmdir()
    except OSError as exc:
        raise OutputError(f"{what} {str(path)!r}: cannot write in {str(anchor)!r} "
                          f"({exc.strerror or exc})") from None


def check_output_dir(path: Path, what: str, *, owned_by: str) -> None:
    """Check that folder ``path`` can be written or replaced whole.

    It may be missing, empty, or hold an earlier run's output, recognised by the file
    ``owned_by`` in it (``build.json`` of a build, ``index.json`` of a layer dump). Anything
    else is the user's and is never replaced.

    Raises
    ------
    OutputError
        If ``path`` is a file, holds files this tool did not write, holds the current folder,
        or cannot be written.
    """
    path = Path(path)
    here = Path.cwd().resolve()
    if path.resolve() == here or path.resolve() in here.parents:
        raise OutputError(f"{what} {str(path)!r} holds the current folder; it is replaced whole, "
                          "so give a folder outside it")
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise OutputError(f"{what} {str(path)!r} is a file, not a folder")
        if (path / owned_by).is_file():
            pass    # an earlier run's output: replaced whole
        elif any(path.iterdir()):
            names = sorted(p.name for p in path.iterdir())
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise OutputError(f"{what} {str(path)!r} holds files hwgen did not write ({shown}); "
                              f"give a new or empty folder, or one an earlier run wrote")
    _check_can_create_in(path, what)


def check_output_file(path: Path, what: str) -> None:
    """Check that file ``path`` can be written (missing parent folders are created).

    Raises
    ------
    OutputError
        If ``path`` is a folder or its folder cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {str(path)!r} is a folder, not a file")
    _check_can_create_in(path, what)


_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def private_dir(parent: Path, name: str) -> Path:
    """Create a folder in ``parent`` that only this process writes, to become ``name``."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{name}.{_HOST}-{os.getpid()}.", suffix=".partial",
                                 dir=parent))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:     # another user's process
        return True
    return True


def remove_abandoned(parent: Path) -> list[Path]:
    """Remove the private folders in ``parent`` whose process on this host has ended.

    Returns the folders removed.
    """
    parent = Path(parent)
    pattern = re.compile(rf"^\..+\.{re.escape(_HOST)}-(\d+)\.[^.]+\.partial$")
    removed = []
    if not parent.is_dir():
        return removed
    for entry in parent.iterdir():
        match = pattern.match(entry.name)
        if match and entry.is_dir() and not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


@contextmanager
def replacing_dir(final: Path) -> Iterator[Path]:
    """A private folder to write into; on success it replaces folder ``final`` whole.

    On any exception (Ctrl-C included) the private folder is removed and ``final`` is left as
    it was. The folder is made beside ``final`` (in its nearest existing ancestor, so the
    move is a rename on one file system; missing parents are created only on success).
    """
    final = Path(os.path.abspath(final))
    anchor = _existing_ancestor(final.parent)
    remove_abandoned(anchor)
    work = private_dir(anchor, final.name)
    try:
        yield work
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():
            old = private_dir(final.parent, final.name + "-old")
            os.rename(final, old / final.name)
            os.rename(work, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def write_file_atomically(path: Path, write) -> None:
    """Call ``write(file_object)`` on a private file, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
