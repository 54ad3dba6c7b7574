"""`vla keys`: make a CurveZMQ key pair for a policy server or a robot."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "keys", help="make a CurveZMQ key pair (server or robot)",
        description="Write NAME.key (public: share it) and NAME.key_secret (keep it private). "
                    "The server runs with --curve-secret server.key_secret --curve-allow DIR, "
                    "where DIR holds each allowed robot's NAME.key; a robot needs its own "
                    ".key_secret and the server's .key.",
    )
    p.add_argument("--out", required=True, help="directory to write the key files into")
    p.add_argument("--name", default="server", help="file name stem (default server)")
    p.set_defaults(func=run)


def run(args) -> int:
    from vla.serving.curve import make_keys

    public, secret = make_keys(args.out, args.name)
    print(f"wrote {public} (public: give it to the peer) and {secret} (secret: keep it here)")
    return 0
