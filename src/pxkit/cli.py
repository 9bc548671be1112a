"""The `pxkit` command line: `pxkit sim` serves the simulated gateway, `pxkit demo` runs the kit on it, `pxkit record`
records a gateway's market and account pushes to parquet.

Bad values are refused with argparse's one-line usage error (exit 2); Ctrl-C ends any command with one line and
exit status 130 (`record` writes what it holds first).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from . import __version__
from .errors import InputError, ProtocolError, PxError
from .times import parse_ts

API_KEY_ENV = "PXKIT_SIM_API_KEY"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_TRADES_PER_MINUTE = 60_000.0  # a thousand trades a second per contract, far past any real market
MAX_SPEED = 10_000.0  # a simulated week in about a minute
START_YEARS = range(2000, 2099)  # contract ids carry a two-digit year (MNQH6 in 2026): one century, quarters included
INTERRUPTED = 130  # the shell's status for a command ended by SIGINT
_KEY_HELP = (f"apiKey the simulator accepts, taken from --api-key-file, else --api-key, else ${API_KEY_ENV}, "
             "else demo")


def _number(kind: Callable[[str], float], what: str, low: float, high: float = math.inf, *,
            low_open: bool = False) -> Callable[[str], float]:
    """An argparse type: `kind(text)`, finite, at least `low` (above it when `low_open`), at most `high`."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not math.isfinite(value) or value < low or (low_open and value == low) or value > high:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    return parse


def _start(text: str) -> datetime:
    """An argparse type: 'now' (the wall clock) or an ISO-8601 moment, as UTC."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        start = parse_ts(text)
    except ProtocolError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither an ISO-8601 time like 2026-03-02T14:30:00Z "
                                         "nor 'now'") from None
    if start.year not in START_YEARS:
        raise argparse.ArgumentTypeError(f"{text!r} is outside the years {START_YEARS[0]}-{START_YEARS[-1]}")
    return start


SEED = _number(int, "a whole number >= 0", 0)


def _add_log_level(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument("--log-level", type=str.upper, choices=LOG_LEVELS, default=default, metavar="LEVEL",
                        help=f"{', '.join(LOG_LEVELS)}, in any case (default {default})")


def _sim_parser(sub: argparse._SubParsersAction) -> None:
    from .sim.clock import DEFAULT_START  # the simulator's one default start, shared with the embedded one

    sim = sub.add_parser("sim", help="serve the simulated gateway until interrupted")
    sim.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    sim.add_argument("--port", type=_number(int, "a port number 0-65535", 0, 65535), default=0,
                     help="port (default 0: any free port)")
    sim.add_argument("--seed", type=SEED, default=1, help="market seed, >= 0 (default 1)")
    sim.add_argument("--user", default="demo", help="userName the simulator accepts (default demo)")
    keys = sim.add_argument_group("API key", _KEY_HELP)
    source = keys.add_mutually_exclusive_group()
    source.add_argument("--api-key-file", type=Path, metavar="PATH",
                        help="read the apiKey from this file (one line)")
    source.add_argument("--api-key", help="the apiKey itself: visible to every user in the process list, "
                                          f"prefer ${API_KEY_ENV} or --api-key-file")
    sim.add_argument("--trades-per-minute", default=60.0,
                     type=_number(float, f"a rate above 0 and at most {MAX_TRADES_PER_MINUTE:.0f}", 0,
                                  MAX_TRADES_PER_MINUTE, low_open=True),
                     help="average market trades per contract per minute "
                          f"(default 60, at most {MAX_TRADES_PER_MINUTE:.0f})")
    sim.add_argument("--max-batch", type=_number(int, "a whole number >= 1", 1), default=50,
                     help="records per GatewayTrade/GatewayDepth push (default 50)")
    sim.add_argument("--speed", default=1.0,
                     type=_number(float, f"a factor above 0 and at most {MAX_SPEED:.0f}", 0, MAX_SPEED, low_open=True),
                     help=f"simulated seconds per wall-clock second (default 1, at most {MAX_SPEED:.0f})")
    sim.add_argument("--start", type=_start, default=DEFAULT_START,
                     help="simulated start: ISO-8601 (a time without offset is UTC) or 'now' for the wall clock "
                          f"(default {DEFAULT_START:%Y-%m-%dT%H:%MZ}, Monday 09:30 New York, the moment the embedded "
                          "simulator starts at)")
    _add_log_level(sim, "WARNING")


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


async def _serve_sim(args: argparse.Namespace, api_key: str) -> int:
    from .sim import Credentials, SimConfig, SimServer

    config = SimConfig(seed=args.seed, trades_per_minute=args.trades_per_minute, max_batch=args.max_batch)
    server = SimServer(host=args.host, port=args.port, config=config, realtime=True, start=args.start,
                       speed=args.speed, credentials=Credentials(args.user, api_key))
    async with server:
        print(f"pxkit sim ready at {server.base_url} (seed {args.seed}, user {args.user!r}, "
              f"start {args.start:%Y-%m-%dT%H:%M:%SZ})", flush=True)
        await asyncio.Event().wait()
    return 0


def _demo_parser(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="stream three instruments and trade a bracket on the embedded simulator")
    demo.add_argument("--seconds", type=_number(float, "a number of seconds above 0", 0, low_open=True),
                      default=6.0, help="how long to stream before trading (default 6)")
    demo.add_argument("--seed", type=SEED, default=1, help="market seed, >= 0 (default 1)")
    _add_log_level(demo, "ERROR")


def _record_parser(sub: argparse._SubParsersAction) -> None:
    record = sub.add_parser("record", help="record trades, quotes, depth and the account's events to parquet",
                            description="Record the market pushes of SYMBOLS and the account's orders, fills, "
                                        "positions and balance to partitioned parquet under --out, from the gateway "
                                        "named by the PROJECT_X_* environment, else the embedded simulator.")
    record.add_argument("symbols", nargs="+", metavar="SYMBOLS", help="instruments, e.g. MNQ ES")
    record.add_argument("--out", required=True, type=Path, metavar="DIR",
                        help="recording directory, made if missing; an existing recording gets new parts")
    record.add_argument("--seconds", type=_number(float, "a number of seconds above 0", 0, low_open=True),
                        help="stop after this long (default: until interrupted)")
    record.add_argument("--flush-interval", type=_number(float, "a number of seconds above 0 and at most 3600", 0,
                                                         3600, low_open=True),
                        default=1.0, help="seconds between writes; a kill loses at most this much (default 1)")
    _add_log_level(record, "ERROR")


async def _record(args: argparse.Namespace) -> int:
    try:
        return await _record_suite(args)
    except PxError as exc:  # no instrument started, a refused login...: one line, not a traceback
        print(f"pxkit record: {exc}", file=sys.stderr, flush=True)
        return 1


async def _record_suite(args: argparse.Namespace) -> int:
    from .suite import TradingSuite

    async with TradingSuite.create(args.symbols, timeframes=["1min"], features=["orderbook"]) as suite:
        where = "the embedded simulator" if suite.sim is not None else suite.client.config.api_url
        names = ", ".join(f"{symbol} {ctx.instrument_info.id}" for symbol, ctx in suite.items())
        async with suite.record(args.out, flush_interval=args.flush_interval) as recording:
            failed = "".join(f"; {symbol} failed: {error}" for symbol, error in suite.failures.items())
            print(f"pxkit record: {names} from {where} to {recording.path}{failed}", flush=True)
            if args.seconds is None:
                await asyncio.Event().wait()
            await asyncio.sleep(args.seconds)
        rows = ", ".join(f"{n} {kind}" for kind, n in recording.stats.rows.items() if n)
        print(f"pxkit record: wrote {rows or 'no rows'} in {recording.stats.parts} files", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pxkit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"pxkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _demo_parser(sub)
    _sim_parser(sub)
    _record_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    try:
        if args.command == "demo":
            from .demo import run

            return asyncio.run(run(args.seconds, args.seed))
        if args.command == "record":
            from .research.recorder import recording_dir

            try:
                recording_dir(args.out)
            except InputError as exc:
                sub.choices["record"].error(f"argument --out: {exc}")
            return asyncio.run(_record(args))
        return asyncio.run(_serve_sim(args, _sim_api_key(args, parser)))
    except KeyboardInterrupt:  # Ctrl-C, at any point: asyncio.run has already cancelled and awaited the command
        print(f"pxkit {args.command}: interrupted", file=sys.stderr, flush=True)
        return INTERRUPTED


if __name__ == "__main__":
    raise SystemExit(main())
