"""Files only their user may read: 0700 directories and 0600 files.

A journal, a spool or a secret key grants whoever reads it the messages or the identity
in it, so a directory that holds one must be the user's own, reached without a symlink,
and writable by nobody else (or another user could swap what is in it).
"""

from __future__ import annotations

import os
import stat

from zmqswarm.errors import ConfigError

__all__ = ["check_private_file", "private_dir"]


def private_dir(path: str | os.PathLike[str]) -> None:
    """Make ``path`` (and its missing parents) with mode 0700; refuse one that is a symlink,
    belongs to another user, or that others may write to. A directory we own that others
    may only read or enter is tightened to 0700."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise ConfigError(f"{os.fspath(path)} is a symlink: give the real directory")
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{os.fspath(path)} is not a directory")
    if st.st_uid != os.getuid():
        raise ConfigError(
            f"{os.fspath(path)} belongs to uid {st.st_uid}, not to us ({os.getuid()}):"
            " use a directory of your own"
        )
    if st.st_mode & 0o022:
        raise ConfigError(
            f"{os.fspath(path)} may be written by others (mode {stat.S_IMODE(st.st_mode):04o}):"
            f" chmod 700 {os.fspath(path)}"
        )
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def check_private_file(path: str | os.PathLike[str]) -> None:
    """Refuse a secret-holding file that others may read or write, as ssh does."""
    st = os.stat(path)
    if st.st_mode & 0o077:
        raise ConfigError(
            f"{os.fspath(path)} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}):"
            f" chmod 600 {os.fspath(path)}"
        )
