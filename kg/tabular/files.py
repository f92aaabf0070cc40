"""Files a table names (``kind = "image"`` / ``"text_file"`` cells): checked, confined, capped.

A path cell is refused when it holds a NUL character or a path component longer than
:data:`MAX_NAME_BYTES` (what no filesystem accepts), and when it resolves (``..`` and
symlinks followed) outside the allowed folders: the literal's ``root`` (the table's folder
by default) and any extra data roots (``kgf build --data-root DIR``,
``table_to_rdf(..., data_roots=[DIR])``). Only regular files are read (a device such as
``/dev/zero``, a FIFO or a folder is refused before it is opened), opened with
``O_NONBLOCK`` so that a FIFO swapped in after the check cannot block, and at most
:data:`MAX_TEXT_FILE_BYTES` of them.

:func:`read_regular_file` is the generic part, used by :mod:`fusion.features` for image
files as well; it raises :class:`SpecialFileError` (an ``OSError``) naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path

MAX_NAME_BYTES = 255  # longest file name component (ext4, APFS, NTFS)
MAX_PATH_BYTES = 4096  # PATH_MAX on Linux
MAX_TEXT_FILE_BYTES = 16 << 20  # a description file longer than this is not a description


class SpecialFileError(OSError):
    """A path that names something other than a regular file, or a file over the size cap."""


def path_problem(value: str) -> str | None:
    """Why ``value`` cannot be a file path (NUL, over-long component), or None."""
    if "\0" in value:
        return "the path holds a NUL character"
    raw = value.encode("utf-8", "surrogateescape")
    if len(raw) > MAX_PATH_BYTES:
        return f"the path is {len(raw):,} bytes long (at most {MAX_PATH_BYTES:,})"
    for part in raw.replace(b"\\", b"/").split(b"/"):
        if len(part) > MAX_NAME_BYTES:
            return (
                f"a path component is {len(part):,} bytes long (at most {MAX_NAME_BYTES} "
                "bytes per file or folder name)"
            )
    return None


def outside(path: Path, roots: Iterable[Path]) -> bool:
    """Whether ``path``, resolved (``..`` and symlinks followed), is outside every root."""
    resolved = path.resolve(strict=False)
    return not any(resolved.is_relative_to(Path(r).resolve(strict=False)) for r in roots)


def regular_file_size(path: Path) -> int:
    """The size of ``path`` when it is a regular file (symlinks followed); otherwise
    :class:`SpecialFileError` (FileNotFoundError when it does not exist)."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise SpecialFileError(
            errno.EINVAL,
            f"not a regular file ({_kind(info.st_mode)}); only files are read",
            str(path),
        )
    return info.st_size


def read_regular_file(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes.

    The type is checked with ``os.stat`` before opening (a device, FIFO, socket or folder
    is never opened), the file is opened with ``O_NONBLOCK`` and checked again on the open
    descriptor (a file swapped for a FIFO in between), and no more than ``limit + 1``
    bytes are read (a file that grew past the cap is refused too).

    Raises:
        FileNotFoundError: no such file.
        SpecialFileError: not a regular file, or over ``limit`` bytes (names the file).
        OSError: any other read error.
    """
    path = Path(path)
    if regular_file_size(path) > limit:
        raise _too_big(path, limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise SpecialFileError(
                errno.EINVAL, f"not a regular file ({_kind(info.st_mode)})", str(path)
            )
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > limit:
        raise _too_big(path, limit)
    return b"".join(chunks)


def _too_big(path: Path, limit: int) -> SpecialFileError:
    return SpecialFileError(
        errno.EFBIG, f"larger than the {limit:,}-byte limit for one file", str(path)
    )


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"
