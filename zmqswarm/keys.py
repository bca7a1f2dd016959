"""CURVE keys: making, trusting and loading them, and putting them on sockets.

A key pair is two ZeroMQ certificate files, written by pyzmq's own helpers: ``NAME.key``
(the public key, to give to the router) and ``NAME.key_secret`` (both keys, 0600, never
shared). A router lets in the public keys found in its allow directory, one ``NAME.key``
each; NAME is the key's name, the router's User-Id for every frame its holder sends, and
what decides which peer names the holder may use.

A client is secured by its own secret file and the router's public key file, given as
arguments, or through ``$ZS_CURVE_SECRET`` and ``$ZS_ROUTER_KEY``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import zmq
import zmq.auth

from zmqswarm.errors import ConfigError
from zmqswarm.private import check_private_file, private_dir
from zmqswarm.protocol.codec import NAME_RULE, valid_name

__all__ = [
    "ENV_CURVE_SECRET",
    "ENV_ROUTER_KEY",
    "ZAP_DOMAIN",
    "ClientKeys",
    "KeyInfo",
    "ServerKeys",
    "client_keys",
    "default_key_dir",
    "list_keys",
    "load_public",
    "load_secret",
    "new_keys",
    "secure_client",
    "secure_server",
    "trust",
]

ENV_CURVE_SECRET = "ZS_CURVE_SECRET"
ENV_ROUTER_KEY = "ZS_ROUTER_KEY"
ZAP_DOMAIN = "zmqswarm"
PUBLIC, SECRET = ".key", ".key_secret"


class ServerKeys(NamedTuple):
    """A router's key pair (Z85)."""

    public: bytes
    secret: bytes


class ClientKeys(NamedTuple):
    """What a peer needs to reach a CURVE router: its own pair and the router's public key."""

    public: bytes
    secret: bytes
    server: bytes


class KeyInfo(NamedTuple):
    name: str
    public: str  # Z85
    path: Path
    secret: bool  # the file holds the secret key too


def default_key_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "zmqswarm" / "keys"


def new_keys(name: str, directory: Path) -> tuple[Path, Path]:
    """A fresh key pair for ``name`` in ``directory`` (0700): (public file, secret file).
    An existing pair is never overwritten: a lost secret is a new identity."""
    if not valid_name(name) or "/" in name:
        raise ConfigError(f"invalid key name {name!r}: {NAME_RULE}, without '/'")
    private_dir(directory)
    public, secret = directory / f"{name}{PUBLIC}", directory / f"{name}{SECRET}"
    for path in (public, secret):
        if path.exists():
            raise ConfigError(f"{path} exists: remove it first to make a new key for {name!r}")
    old = os.umask(0o077)  # the secret file is never readable by others, not even briefly
    try:
        zmq.auth.create_certificates(directory, name)
    finally:
        os.umask(old)
    return public, secret


def load_secret(path: str | os.PathLike[str]) -> tuple[bytes, bytes]:
    """(public, secret) from a ``.key_secret`` file that only its owner can read."""
    public, secret = _load(path)
    if secret is None:
        raise ConfigError(f"{os.fspath(path)} holds no secret key: give the .key_secret file")
    check_private_file(path)
    return public, secret


def load_public(path: str | os.PathLike[str]) -> bytes:
    return _load(path)[0]


def _load(path: str | os.PathLike[str]) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except OSError as exc:
        raise ConfigError(f"cannot read key file {os.fspath(path)}: {exc}") from None
    except ValueError:
        raise ConfigError(
            f"{os.fspath(path)} is not a ZeroMQ certificate (no public-key)"
        ) from None
    for key in (public, secret):
        if key is not None and len(key) != 40:
            raise ConfigError(f"{os.fspath(path)}: a CURVE key is 40 Z85 characters")
    return public, secret


def trust(path: Path, allow_dir: Path, name: str | None = None) -> Path:
    """Copy the public key file ``path`` into ``allow_dir`` as ``NAME.key`` (NAME: ``name``,
    else the file's own name): a router reading that directory lets its holder in."""
    public, secret = _load(path)
    if secret is not None:
        raise ConfigError(
            f"{path} holds a secret key: trust the public file ({path.stem}{PUBLIC}) instead"
        )
    name = name or path.name.removesuffix(PUBLIC)
    if not valid_name(name) or "/" in name:
        raise ConfigError(f"invalid key name {name!r}: {NAME_RULE}, without '/'")
    private_dir(allow_dir)
    target = allow_dir / f"{name}{PUBLIC}"
    for other in list_keys(allow_dir):
        if other.public == public.decode() and other.name != name:
            raise ConfigError(f"{path}'s key is already trusted as {other.name!r}")
    tmp = target.with_suffix(".tmp")
    old = os.umask(0o077)
    try:
        shutil.copyfile(path, tmp)
    finally:
        os.umask(old)
    os.replace(tmp, target)  # a router reloading meanwhile sees the old file or the new
    return target


def list_keys(directory: Path) -> list[KeyInfo]:
    """The keys in ``directory``, by name: public files, and secret files with no public."""
    if not directory.is_dir():
        return []
    found: dict[str, KeyInfo] = {}
    for path in sorted(directory.iterdir()):
        for suffix in (PUBLIC, SECRET):
            if path.name.endswith(suffix):
                name = path.name.removesuffix(suffix)
                try:
                    public, secret = _load(path)
                except ConfigError:
                    continue
                if name not in found or secret is not None:
                    found[name] = KeyInfo(name, public.decode(), path, secret is not None)
    return [found[name] for name in sorted(found)]


def client_keys(
    secret: str | os.PathLike[str] | None = None,
    router_key: str | os.PathLike[str] | None = None,
    *,
    configured: tuple[str | None, str | None] = (None, None),
) -> ClientKeys | None:
    """A peer's CURVE keys from files: the arguments, else ``$ZS_CURVE_SECRET`` and
    ``$ZS_ROUTER_KEY``, else the config's; None when none is given (a NULL connection)."""
    secret = secret or os.environ.get(ENV_CURVE_SECRET) or configured[0]
    router_key = router_key or os.environ.get(ENV_ROUTER_KEY) or configured[1]
    if not secret and not router_key:
        return None
    if not secret or not router_key:
        missing = (
            "--curve-secret / $ZS_CURVE_SECRET" if not secret else "--router-key / $ZS_ROUTER_KEY"
        )
        raise ConfigError(
            f"CURVE needs both our secret key and the router's public key: give {missing}"
        )
    public, own = load_secret(secret)
    return ClientKeys(public, own, load_public(router_key))


def secure_client(sock: zmq.Socket[Any], keys: ClientKeys | None) -> None:
    """Make ``sock`` (before it connects) a CURVE client of the router ``keys.server``."""
    if keys is None:
        return
    sock.setsockopt(zmq.CURVE_PUBLICKEY, keys.public)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.CURVE_SERVERKEY, keys.server)


def secure_server(sock: zmq.Socket[Any], keys: ServerKeys) -> None:
    """Make ``sock`` (before it binds) a CURVE server whose every handshake asks the ZAP
    handler, and fails when there is none: libzmq's default is to let any key in."""
    sock.setsockopt(zmq.CURVE_SERVER, 1)
    sock.setsockopt(zmq.CURVE_SECRETKEY, keys.secret)
    sock.setsockopt(zmq.ZAP_DOMAIN, ZAP_DOMAIN.encode())
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
