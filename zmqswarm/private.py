"""Files only their user may read: 0700 directories and 0600 files.

A journal, a spool or a secret key grants whoever reads it the messages or the identity
in it, so a directory that holds one must be the user's own, reached without a symlink,
and writable by nobody else (or another user could swap what is in it).
"""

from __future__ import annotations

import os
import stat

from zmqswarm.errors import ConfigError

__all__ = ["check_private_file", "make_dirs", "open_private", "private_dir"]


def private_dir(path: str | os.PathLike[str]) -> None:
    """Make ``path`` (and its missing parents) with mode 0700; refuse one that is a symlink,
    belongs to another user, or that others may write to. A directory we own that others
    may only read or enter is tightened to 0700."""
    make_dirs(path)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"{os.fspath(path)} is a symlink: give the real directory")
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{os.fspath(path)} is not a directory")
    _check_owner(path, st, "use a directory of your own")
    if st.st_mode & 0o022:
        raise ConfigError(
            f"{os.fspath(path)} may be written by others (mode {stat.S_IMODE(st.st_mode):04o}):"
            f" chmod 700 {os.fspath(path)}"
        )
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def make_dirs(path: str | os.PathLike[str]) -> None:
    """Make ``path`` and each of its missing parents with mode 0700 (``os.makedirs`` gives
    the parents 0777 less the umask); leave alone the ones that exist: for a place the
    user named, whose directories are theirs to set (``private_dir`` checks them too)."""
    path = os.fspath(path)
    head, tail = os.path.split(path)
    if not tail:
        head, tail = os.path.split(head)
    if head and tail and not os.path.exists(head):
        make_dirs(head)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def open_private(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open(path, flags)`` for a file that holds messages: made 0600 whatever the umask;
    one that exists, ours, is tightened to 0600 if others may read it; another user's file,
    or one that is not a regular file, is refused. ``flags`` should include ``O_CREAT``."""
    fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{os.fspath(path)} is not a regular file")
        _check_owner(path, st, "give a file of your own")
        if st.st_mode & 0o077:
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_private_file(path: str | os.PathLike[str]) -> None:
    """Refuse a secret-holding file that others may read or write, as ssh does."""
    st = os.stat(path)
    if st.st_mode & 0o077:
        raise ConfigError(
            f"{os.fspath(path)} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}):"
            f" chmod 600 {os.fspath(path)}"
        )


def _check_owner(path: str | os.PathLike[str], st: os.stat_result, advice: str) -> None:
    if st.st_uid != os.getuid():
        raise ConfigError(
            f"{os.fspath(path)} belongs to uid {st.st_uid}, not to us ({os.getuid()}): {advice}"
        )
