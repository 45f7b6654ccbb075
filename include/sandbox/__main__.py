"""Command line of the sandbox: ``generate`` a tenant, or bring the emulators ``up``.

The invocation is fixed (tests, benchmarks, the demo and acceptance checks script it):

    python -m include.sandbox generate --users N --seed S --out DIR
    python -m include.sandbox up --tenant FILE --org FILE [--graph-port P]
        [--salesforce-port P] [--ca-dir DIR] [--env-file PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from include.sandbox.core.envfile import sandbox_settings, write_env_file
from include.sandbox.core.heap import settle_loaded_state
from include.sandbox.core.server import Served, bind_socket, serve_forever, url_of
from include.sandbox.core.service import build_app
from include.sandbox.core.tls import ensure_tls

DEFAULT_GRAPH_PORT = 9443
DEFAULT_SALESFORCE_PORT = 9444


def _load_fixture(path: Path, kind: str) -> dict[str, Any]:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise SystemExit(f"error: {kind} fixture {path} does not exist") from None
    except orjson.JSONDecodeError as exc:
        raise SystemExit(f"error: {kind} fixture {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise SystemExit(f"error: {kind} fixture {path} must hold a JSON object")
    return data


def _up(args: argparse.Namespace) -> int:
    from include.sandbox.graph import build_service as build_graph
    from include.sandbox.salesforce import build_service as build_salesforce

    started = time.monotonic()
    tenant = _load_fixture(args.tenant, "tenant")
    org = _load_fixture(args.org, "org")
    public = (args.public_host,) if args.public_host else ()
    tls = ensure_tls(args.ca_dir.resolve(), extra_names=public)
    try:
        graph_sock = bind_socket(args.graph_port, args.host)
        sf_sock = bind_socket(args.salesforce_port, args.host)
    except OSError as exc:
        raise SystemExit(f"error: {exc}") from None
    graph_url, sf_url = url_of(graph_sock, args.public_host), url_of(sf_sock, args.public_host)
    try:
        graph = build_graph(tenant, base_url=graph_url)
        salesforce = build_salesforce(org, base_url=sf_url)
    except (ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f"error: cannot load fixtures: {exc}") from None
    served = [
        Served("graph", build_app(graph, seed=args.seed), graph_sock),
        Served("salesforce", build_app(salesforce, seed=args.seed), sf_sock),
    ]
    settings = sandbox_settings(tenant, org, graph_url, sf_url, tls.ca_bundle)
    del tenant, org  # the emulators hold their own state; a million-user fixture is GBs
    settle_loaded_state()

    def ready() -> None:
        if args.env_file:
            write_env_file(args.env_file, settings)
        print(f"Microsoft Graph emulator:  {graph_url}  (token endpoint {graph_url}/<tenant>/oauth2/v2.0/token)")
        print(f"Salesforce emulator:       {sf_url}")
        print(f"CA bundle:                 {tls.ca_bundle}")
        if args.env_file:
            print(f"Settings (env file):       {args.env_file}")
        print(f"Ready in {time.monotonic() - started:.1f}s; Ctrl-C stops.", flush=True)

    asyncio.run(serve_forever(served, tls, ready, log_level=args.log_level))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from include.sandbox.generator import generate

    if args.users < 1:
        raise SystemExit("error: --users must be at least 1")
    started = time.monotonic()
    summary = generate(users=args.users, seed=args.seed, out_dir=args.out)
    print(f"Wrote {args.out / 'tenant.json'} and {args.out / 'org.json'} in {time.monotonic() - started:.1f}s")
    for key, value in summary.items():
        print(f"  {key}: {value}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.sandbox", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a synthetic tenant.json + org.json pair")
    gen.add_argument("--users", type=int, required=True, help="number of Entra users")
    gen.add_argument("--seed", type=int, default=1, help="random seed (same seed, same files)")
    gen.add_argument("--out", type=Path, required=True, help="output directory")
    gen.set_defaults(func=_generate)

    up = sub.add_parser("up", help="serve the Graph and Salesforce emulators until SIGINT/SIGTERM")
    up.add_argument("--tenant", type=Path, required=True, help="tenant fixture (Graph side)")
    up.add_argument("--org", type=Path, required=True, help="org fixture (Salesforce side)")
    up.add_argument("--graph-port", type=int, default=DEFAULT_GRAPH_PORT, help="0 picks a free port")
    up.add_argument("--salesforce-port", type=int, default=DEFAULT_SALESFORCE_PORT, help="0 picks a free port")
    up.add_argument("--ca-dir", type=Path, default=Path(".sandbox/ca"), help="where the CA lives (ca.pem)")
    up.add_argument("--env-file", type=Path, help="write KEY=VALUE settings for the product here")
    up.add_argument("--host", default="127.0.0.1", help="bind address (0.0.0.0 inside a container)")
    up.add_argument(
        "--public-host",
        help="the name clients reach the emulators by (URLs in the env file and in the emulators' links; "
        "added to the TLS certificate), e.g. the service name under Docker Compose; default: loopback",
    )
    up.add_argument("--seed", type=int, default=0, help="seed for fault-rule randomness")
    up.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    up.set_defaults(func=_up)

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
