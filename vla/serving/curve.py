"""CurveZMQ for remote robots: key files, server and client socket setup, the allow list.

Key pairs are ZeroMQ certificate files (`NAME.key` public, `NAME.key_secret` both
halves), as `zmq.auth.create_certificates` writes them. The server loads its secret
file and admits only the clients whose public `.key` files sit in the allow directory
(checked by a ZAP `ThreadAuthenticator`); a client needs its own secret file and the
server's public one. Without Curve, traffic is plain text: fine on loopback only.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


def make_keys(out_dir: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """Write NAME.key and NAME.key_secret in out_dir; refuses to overwrite a pair."""
    out = Path(out_dir)
    public, secret = out / f"{name}.key", out / f"{name}.key_secret"
    for path in (public, secret):
        if path.exists():
            raise FileExistsError(f"{path} exists; choose another --name or remove it first")
    out.mkdir(parents=True, exist_ok=True)
    public_file, secret_file = zmq.auth.create_certificates(str(out), name)
    os.chmod(secret_file, 0o600)  # the secret half must not be world-readable
    return Path(public_file), Path(secret_file)


def load_secret(path: str | os.PathLike) -> tuple[bytes, bytes]:
    """(public, secret) keys from a `.key_secret` file."""
    public, secret = _load(path)
    if secret is None:
        raise ValueError(f"{path} holds no secret key; pass the .key_secret file, not the .key")
    return public, secret


def load_public(path: str | os.PathLike) -> bytes:
    return _load(path)[0]


def _load(path) -> tuple[bytes, bytes | None]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no such key file: {path} (make one with `vla keys`)")
    try:
        return zmq.auth.load_certificate(str(path))
    except Exception as err:
        raise ValueError(f"{path} is not a ZeroMQ certificate file: {err}") from None


def start_authenticator(context: zmq.Context, allow_dir: str | os.PathLike) -> ThreadAuthenticator:
    """A ZAP handler on `context` admitting only the public keys (*.key) in allow_dir."""
    allow = Path(allow_dir)
    if not allow.is_dir():
        raise FileNotFoundError(f"--curve-allow {allow}: no such directory")
    if not list(allow.glob("*.key")):
        raise ValueError(f"--curve-allow {allow} holds no client public keys (*.key); copy "
                         f"each robot's NAME.key there (made by `vla keys`)")
    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve(domain="*", location=str(allow))
    return auth


def configure_server(socket: zmq.Socket, secret_file: str | os.PathLike) -> None:
    public, secret = load_secret(secret_file)
    socket.curve_publickey = public
    socket.curve_secretkey = secret
    socket.curve_server = True


def is_loopback(endpoint: str) -> bool:
    """True for endpoints other machines cannot reach: ipc, inproc, tcp on 127/8 or ::1."""
    transport, _, address = endpoint.partition("://")
    if transport in ("ipc", "inproc"):
        return True
    host = address.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "*", an interface name or a host name: assume reachable
