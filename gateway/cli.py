"""The ``gateway`` command line (INTERFACE §3). Imports are lazy so every command starts fast."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

from gateway import __version__


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError("must be a positive whole number")
    return int(text)


def _port(text: str) -> int:
    port = _positive_int(text)
    if port > 65535:
        raise argparse.ArgumentTypeError("must be a port number (1-65535)")
    return port


def cmd_serve(args: argparse.Namespace) -> int:
    from gateway.serve import run
    from gateway.settings import config_path  # not the loader: gevent patches first

    run(str(config_path(args.config)), args.host, args.port)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from gateway.loader import load_settings_or_exit
    from gateway.settings import config_path

    settings = load_settings_or_exit(args.path)
    print(
        f"{config_path(args.path)}: ok ({len(settings.sites)} site(s), "
        f"{len(settings.identities)} identity provider(s), {len(settings.api_keys)} API key(s))"
    )
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from gateway.twentythree.tokens import expiry, time_limited_token

    expire = args.expire if args.expire is not None else expiry(time.time(), args.ttl)
    print(time_limited_token(args.photo_token, args.photo_id, expire))
    return 0


def cmd_link(args: argparse.Namespace) -> int:
    from gateway.errors import GatewayError
    from gateway.loader import load_settings_or_exit
    from gateway.logs import audit, configure_logging
    from gateway.runtime import GatewayRuntime

    settings = load_settings_or_exit(args.config)
    if args.site not in settings.sites:
        names = ", ".join(sorted(settings.sites))
        print(f"No site {args.site!r} in the config (sites: {names}).", file=sys.stderr)
        return 2
    configure_logging("warning", stream=sys.stderr)  # stdout is for the links; audit: stderr
    minter = GatewayRuntime.build(settings).site(args.site).minter
    ttl = min(args.ttl, 366 * 86400)
    try:
        (item,) = minter.mint([args.photo_id], minter.expire_after(ttl)).items()
    except GatewayError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    if "error" in item:
        print(f"error: {item['error']['code']}: {item['error']['message']}", file=sys.stderr)
        return 1
    audit(
        "tokens_minted", via="cli", site=args.site, photo_ids=[args.photo_id], expire=item["expire"]
    )
    expires = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(item["expire"]))
    print(f"expire     {item['expire']}  ({expires})")
    print(f"token      {item['token']}")
    for name, url in item["urls"].items():
        print(f"{name:<10} {url}")
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    from gateway.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("The passwords differ.", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < 8:
        print("A password needs at least 8 characters.", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from gateway.entitlements import EntitlementStore, EntitlementStoreUnavailable
    from gateway.entitlements.migrate import head
    from gateway.loader import load_settings_or_exit
    from gateway.logs import configure_logging

    settings = load_settings_or_exit(args.config)
    configure_logging("warning", stream=sys.stderr)
    store = EntitlementStore(settings.store.database_url.get_secret_value())
    try:
        if args.action == "current":
            current = store.revision()
            state = "up to date" if current == head() else f"behind (newest: {head()})"
            print(f"entitlement database at revision {current or 'none'}: {state}")
            return 0 if current == head() else 1
        before, after = store.upgrade_schema()
    except EntitlementStoreUnavailable as exc:
        sys.stderr.write(f"error: the entitlement database failed: {exc.reason}\n")
        return 1
    finally:
        store.dispose()
    if before == after:
        print(f"entitlement database already at revision {after}")
    else:
        print(f"entitlement database upgraded from {before or 'nothing'} to revision {after}")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    """``gateway config-schema``: the JSON Schema generated from the settings models."""
    import json

    from gateway.config_schema import config_schema

    print(json.dumps(config_schema(), indent=2, sort_keys=False))
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    """``gateway sessions revoke --email E``: what the console's "sign out everywhere" does."""
    from gateway.loader import load_settings_or_exit
    from gateway.logs import audit, configure_logging
    from gateway.sessions import SessionCodec, Sessions
    from gateway.store import StoreUnavailable, open_store

    settings = load_settings_or_exit(args.config)
    configure_logging("warning", stream=sys.stderr)
    if not settings.store.shared:
        sys.stderr.write(
            "error: the in-process store lives inside the running gateway; use the console's "
            "Sessions page (/admin/sessions), or a Redis [store] url\n"
        )
        return 2
    g = settings.gateway
    store = open_store(
        settings.store.url.get_secret_value(),
        settings.store.memory_max_entries,
        settings.store.ca_file,
    )
    codec = SessionCodec(g.secret_keys, g.session_idle, g.session_max_age)
    sessions = Sessions(codec, store, sites=tuple(settings.sites))
    try:
        listed = sessions.revoke_person(args.email)
    except StoreUnavailable as exc:
        sys.stderr.write(f"error: the store did not answer: {exc}\n")
        return 1
    audit("sessions_revoked", email=args.email, operator="cli", listed=listed)
    print(f"{args.email} is signed out everywhere ({listed} listed session(s) ended)")
    return 0


def cmd_devsite(args: argparse.Namespace) -> int:
    from werkzeug.serving import make_server

    from gateway.devsite import DevsiteOptions, create_devsite
    from gateway.devsite.catalog import demo_photos, generated_photos, photos_from_file
    from gateway.devsite.requestlog import JsonRequestHandler, log
    from gateway.logs import configure_logging

    configure_logging("info")
    try:
        own = photos_from_file(args.catalogue) if args.catalogue else demo_photos()
    except (OSError, ValueError) as exc:
        print(f"error: --catalogue: {exc}", file=sys.stderr)
        return 2
    photos = own + generated_photos(args.extra_photos)
    options = DevsiteOptions(
        remote_login_url=args.remote_login_url,
        remote_logout_url=args.remote_logout_url
        or args.remote_login_url.removesuffix("/login") + "/logout",
        photos=photos,
        page_max=max(1, args.page_max),
        bearer_lifetime=max(1, args.bearer_lifetime),
    )
    app = create_devsite(options)
    server = make_server(
        args.host, args.port, app, threaded=True, request_handler=JsonRequestHandler
    )
    log.info(
        "emulated 23 site listening",
        extra={
            "url": f"http://{args.host}:{server.port}/",
            "remote_login_url": args.remote_login_url,
            "photos": len(photos),
        },
    )
    # SIGTERM ends as Ctrl-C does, so the queued log lines are written before exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        server.serve_forever()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gateway", description="23 Gateway: SSO and signed access for TwentyThree sites."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _serving_commands(sub)
    _token_commands(sub)
    _operator_commands(sub)
    _devsite_command(sub)
    return parser


_CONFIG_HELP = "config file (default: $GATEWAY_CONFIG or config/gateway.toml)"


def _serving_commands(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the service (gunicorn with gevent workers)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")  # noqa: S104
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    p.add_argument("--config", help=_CONFIG_HELP)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "config-schema", help="print the JSON Schema of the config file (for editors)"
    )
    p.set_defaults(func=cmd_config_schema)

    p = sub.add_parser("check-config", help="validate a config file and list every problem")
    p.add_argument("path", nargs="?", help=_CONFIG_HELP)
    p.set_defaults(func=cmd_check_config)


def _token_commands(sub: Any) -> None:
    p = sub.add_parser("token", help="print one time-limited token, offline")
    p.add_argument("--photo-id", type=_positive_int, required=True, help="the video's photo_id")
    p.add_argument(
        "--photo-token", required=True, help="the video's own token (photo/list's token field)"
    )
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--expire", type=_positive_int, help="absolute expiry, Unix seconds")
    when.add_argument("--ttl", type=_positive_int, help="seconds from now")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("link", help="mint one token with a configured site and print its URLs")
    p.add_argument("--site", required=True, help="a [sites.<name>] table of the config")
    p.add_argument("--photo-id", type=_positive_int, required=True, help="the video's photo_id")
    p.add_argument(
        "--ttl", type=_positive_int, default=3600, help="token lifetime, seconds (default 3600)"
    )
    p.add_argument("--config", help=_CONFIG_HELP)
    p.set_defaults(func=cmd_link)


def _operator_commands(sub: Any) -> None:
    p = sub.add_parser("hash-password", help="read a password on stdin, print its hash")
    p.set_defaults(func=cmd_hash_password)

    p = sub.add_parser("db", help="the entitlement database's schema ([store] database_url)")
    p.add_argument(
        "action",
        choices=("upgrade", "current"),
        help="upgrade: migrate to the newest revision (also done at start-up); "
        "current: print the revision (exit 1 when behind)",
    )
    p.add_argument("--config", help=_CONFIG_HELP)
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("sessions", help="sign a person out everywhere (a Redis store)")
    p.add_argument("action", choices=("revoke",), help="revoke: every session of --email")
    p.add_argument("--email", required=True, help="the person's e-mail address")
    p.add_argument("--config", help=_CONFIG_HELP)
    p.set_defaults(func=cmd_sessions)


def _devsite_command(sub: Any) -> None:
    p = sub.add_parser("devsite", help="run the emulated 23 site (demo and tests)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8023, help="port (default 8023)")
    p.add_argument(
        "--remote-login-url",
        default="http://127.0.0.1:8000/sso/demo/login",
        help="where the closed site sends visitors who are not signed in "
        "(default http://127.0.0.1:8000/sso/demo/login)",
    )
    p.add_argument(
        "--remote-logout-url",
        default="",
        help="where the site's Log out sends visitors (default: the remote login URL with "
        "/logout for /login, the gateway's sign-out page)",
    )
    p.add_argument("--extra-photos", type=int, default=0, help="add N generated videos (2001...)")
    p.add_argument(
        "--page-max",
        type=int,
        default=100,
        help="pagination_max: the largest page photo/list serves (default 100; 23 may cap lower)",
    )
    p.add_argument(
        "--bearer-lifetime",
        type=int,
        default=3600,
        help="seconds a bearer token from /api/2/user/tokens lives (default 3600)",
    )
    p.add_argument(
        "--catalogue",
        metavar="FILE",
        help="videos from a JSON list instead of the demo's five: [{photo_id, title, "
        "video_length, albums, tags, published, protected}, ...]",
    )
    p.set_defaults(func=cmd_devsite)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
