"""The `pxkit` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .times import parse_ts

API_KEY_ENV = "PXKIT_SIM_API_KEY"
_KEY_HELP = (f"apiKey the simulator accepts, taken from --api-key-file, else --api-key, else ${API_KEY_ENV}, "
             "else demo")


def _sim_parser(sub: argparse._SubParsersAction) -> None:
    sim = sub.add_parser("sim", help="serve the simulated gateway until interrupted")
    sim.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=0, help="port (default: any free port)")
    sim.add_argument("--seed", type=int, default=1, help="market seed (default 1)")
    sim.add_argument("--user", default="demo", help="userName the simulator accepts (default demo)")
    keys = sim.add_argument_group("API key", _KEY_HELP)
    source = keys.add_mutually_exclusive_group()
    source.add_argument("--api-key-file", type=Path, metavar="PATH",
                        help="read the apiKey from this file (one line)")
    source.add_argument("--api-key", help="the apiKey itself: visible to every user in the process list, "
                                          f"prefer ${API_KEY_ENV} or --api-key-file")
    sim.add_argument("--trades-per-minute", type=float, default=60.0,
                     help="average market trades per contract per minute (default 60)")
    sim.add_argument("--max-batch", type=int, default=50,
                     help="records per GatewayTrade/GatewayDepth push (default 50)")
    sim.add_argument("--speed", type=float, default=1.0, help="simulated seconds per wall-clock second")
    sim.add_argument("--start", type=parse_ts, default=None,
                     help="simulated start time, ISO-8601 (default: now)")
    sim.add_argument("--log-level", default="WARNING")


def _sim_api_key(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The apiKey to accept: from the file, else the flag (with a warning), else the environment, else demo."""
    if args.api_key_file is not None:
        try:
            key = args.api_key_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            parser.error(f"--api-key-file: cannot read {args.api_key_file} ({type(exc).__name__})")
        if not key or "\n" in key:
            parser.error(f"--api-key-file: {args.api_key_file} must hold the key on one line")
        return key
    if args.api_key is not None:
        print(f"pxkit sim: warning: a key given with --api-key is visible to every user in the process list; "
              f"set ${API_KEY_ENV} or use --api-key-file instead", file=sys.stderr, flush=True)
        return args.api_key
    return os.environ.get(API_KEY_ENV) or "demo"


async def _serve_sim(args: argparse.Namespace, api_key: str) -> None:
    from .sim import Credentials, SimConfig, SimServer

    config = SimConfig(seed=args.seed, trades_per_minute=args.trades_per_minute, max_batch=args.max_batch)
    server = SimServer(host=args.host, port=args.port, config=config, realtime=True, start=args.start,
                       speed=args.speed, credentials=Credentials(args.user, api_key))
    async with server:
        print(f"pxkit sim ready at {server.base_url} (seed {args.seed}, user {args.user!r})", flush=True)
        await asyncio.Event().wait()


def _demo_parser(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="stream three instruments and trade a bracket on the embedded simulator")
    demo.add_argument("--seconds", type=float, default=6.0, help="how long to stream before trading (default 6)")
    demo.add_argument("--seed", type=int, default=1, help="market seed (default 1)")
    demo.add_argument("--log-level", default="ERROR")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pxkit", description=__doc__)
    parser.add_argument("--version", action="version", version=f"pxkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _demo_parser(sub)
    _sim_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING), stream=sys.stderr)
    if args.command == "demo":
        from .demo import run

        return asyncio.run(run(args.seconds, args.seed))
    api_key = _sim_api_key(args, parser)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_sim(args, api_key))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

