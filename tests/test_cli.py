"""The `pxkit` command: `sim` serves the simulated gateway, prints its URL once, honours its flags; `record` writes a
readable recording, stops cleanly on Ctrl-C, refuses bad values and never prints a secret; `--version`."""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import polars as pl
import pytest

from pxkit.cli import API_KEY_ENV
from pxkit.research import read_recording
from pxkit.sim import Credentials, SimConfig, SimServer
from pxkit.sim.auth import TokenIssuer
from pxkit.sim.clock import DEFAULT_START
from test_security import leaks, record_tokens

SCRIPT = Path(sys.executable).with_name("pxkit")
READY_WITHIN = 60.0  # seconds a started command may take to print its first line on a loaded machine


def first_line(process: subprocess.Popen, within: float = READY_WITHIN) -> str:
    """The next line the process prints, waited for at most `within` seconds; "" if it closed stdout."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(within), f"no line from {process.args} within {within} s"
    return process.stdout.readline()


@pytest.fixture
def serve():
    processes: list[subprocess.Popen] = []

    def start(*flags: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
        clean = {k: v for k, v in os.environ.items() if k != API_KEY_ENV}
        process = subprocess.Popen([str(SCRIPT), "sim", "--port", "0", *flags], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True,
                                   env={**clean, "PYTHONUNBUFFERED": "1", **(env or {})})
        processes.append(process)
        line = first_line(process)  # the one ready line; a dead server closes stdout
        assert line.startswith("pxkit sim ready at http://127.0.0.1:"), line
        return process, line.split(" at ")[1].split()[0]

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def login(url: str, user: str, key: str) -> dict:
    return httpx.post(f"{url}/api/Auth/loginKey", json={"userName": user, "apiKey": key}, timeout=10).json()


def test_sim_serves_on_loopback_with_default_credentials_and_stops_on_interrupt(serve):
    process, url = serve("--seed", "3")
    assert login(url, "demo", "demo")["success"] is True
    wrong = login(url, "demo", "nope")
    assert (wrong["success"], wrong["errorCode"], wrong["token"]) == (False, 3, None)
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 130  # the shell's status for Ctrl-C
    assert process.stdout.read() == ""  # exactly one line was printed
    assert process.stderr.read() == "pxkit sim: interrupted\n"  # one line, no traceback


def command_line(process: subprocess.Popen) -> str:
    """What any user of the machine sees of a process in the process list."""
    return Path(f"/proc/{process.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_sim_credentials_and_seed_flags(serve):
    process, url = serve("--user", "alice", "--api-key", "s3cret", "--seed", "9")
    assert login(url, "demo", "demo")["errorCode"] == 3
    token = login(url, "alice", "s3cret")["token"]
    accounts = httpx.post(f"{url}/api/Account/search", json={"onlyActiveAccounts": True},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10).json()["accounts"]
    assert [a["id"] for a in accounts] == [1001, 1002, 1003]
    process.kill()
    process.wait(10)
    warning = process.stderr.read()
    assert "--api-key is visible to every user in the process list" in warning and API_KEY_ENV in warning
    assert "s3cret" not in warning


def test_sim_takes_its_api_key_from_the_environment_out_of_the_process_list(serve):
    process, url = serve("--user", "alice", env={API_KEY_ENV: "env-key-7f3a"})
    assert login(url, "alice", "env-key-7f3a")["success"] is True
    assert login(url, "alice", "demo")["errorCode"] == 3
    assert "env-key-7f3a" not in command_line(process)
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 130
    assert "env-key-7f3a" not in process.stdout.read() + process.stderr.read()  # never printed


def test_sim_takes_its_api_key_from_a_file(serve, tmp_path: Path):
    key_file = tmp_path / "sim.key"
    key_file.write_text("file-key-91c2\n")
    process, url = serve("--api-key-file", str(key_file), env={API_KEY_ENV: "env-key-loses"})
    assert login(url, "demo", "file-key-91c2")["success"] is True
    assert login(url, "demo", "env-key-loses")["errorCode"] == 3
    assert "file-key-91c2" not in command_line(process)
    process.kill()
    process.wait(10)
    assert process.stderr.read() == ""  # no visibility warning: the key never was on the command line


@pytest.mark.parametrize("content", [None, "", "two\nlines\n"])
def test_sim_refuses_an_unusable_key_file_without_starting(tmp_path: Path, content: str | None):
    key_file = tmp_path / "sim.key"
    if content is not None:
        key_file.write_text(content)
    done = subprocess.run([str(SCRIPT), "sim", "--api-key-file", str(key_file)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 2 and done.stdout == ""
    reason = "cannot read" if content is None else "must hold the key on one line"
    assert "--api-key-file: " in done.stderr and str(key_file) in done.stderr and reason in done.stderr
    assert "lines" not in done.stderr.replace(str(key_file), "")  # the file's content is never echoed


def test_console_script_is_installed():
    result = subprocess.run([str(SCRIPT), "sim", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and "--seed" in result.stdout and "--api-key" in result.stdout
    help_text = " ".join(result.stdout.split())
    assert "--api-key-file" in help_text and f"${API_KEY_ENV}" in help_text and "process list" in help_text


def test_version_flag_prints_the_package_version():
    import pxkit

    result = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert result.stdout.strip() == f"pxkit {pxkit.__version__}"
    assert pxkit.__version__[0].isdigit()


def test_ci_runs_the_readme_test_command():
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    block = readme.split("<!-- test command -->", 1)[1].split("```bash\n", 1)[1].split("\n", 1)[0]
    assert block.endswith("pytest -q") and "pip install" in block
    assert "<!-- test command -->" in (root / ".ci" / "run").read_text()


def test_demo_streams_trades_a_bracket_and_exits_cleanly():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROJECT_X_")}
    done = subprocess.run([str(SCRIPT), "demo", "--seconds", "2"], capture_output=True, text=True, timeout=60,
                          env={**env, "PROJECT_X_USERNAME": "someone", "PROJECT_X_API_KEY": "secret-key"})
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("suite up in") and "MNQ CON.F.US.MNQ.H26" in lines[0]
    assert any(line.startswith("MNQ ") and " | ES " in line and " | MGC " in line for line in lines)
    bracket = next(line for line in lines if line.startswith("MNQ bracket: bought 1 @ "))
    assert "stop " in bracket and "target " in bracket
    assert any(line.startswith("MNQ position 1 @ ") for line in lines)
    assert any(line.startswith("MNQ closed: realised ") for line in lines)
    assert any(line.split()[:1] == ["MGC"] and line.split()[3] == "1.00" for line in lines)  # the matrix diagonal
    assert lines[-1].startswith("shut down cleanly")
    assert "secret-key" not in done.stdout + done.stderr  # the demo never touches the real gateway's credentials


def test_demo_ends_with_one_line_on_interrupt():
    process = subprocess.Popen([str(SCRIPT), "demo", "--seconds", "300"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert first_line(process).startswith("suite up in")
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 130
        assert process.stderr.read() == "pxkit demo: interrupted\n"
        assert "shut down cleanly" not in process.stdout.read()  # it stopped streaming instead of finishing
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


@pytest.mark.parametrize(("flags", "complaint"), [
    (["sim", "--start", "yesterday"], "argument --start: 'yesterday' is neither an ISO-8601 time"),
    (["sim", "--start", "2300-01-01T00:00:00Z"], "argument --start: '2300-01-01T00:00:00Z' is outside the years"),
    (["sim", "--port", "99999"], "argument --port: '99999' is not a port number 0-65535"),
    (["sim", "--port", "-1"], "argument --port: '-1' is not a port number 0-65535"),
    (["sim", "--port", "http"], "argument --port: 'http' is not a port number 0-65535"),
    (["sim", "--log-level", "LOUD"], "argument --log-level: invalid choice: 'LOUD'"),
    (["sim", "--speed", "0"], "argument --speed: '0' is not a factor above 0"),
    (["sim", "--speed", "nan"], "argument --speed: 'nan' is not a factor above 0"),
    (["sim", "--speed", "1e300"], "argument --speed: '1e300' is not a factor above 0 and at most 10000"),
    (["sim", "--trades-per-minute", "-1"], "argument --trades-per-minute: '-1' is not a rate above 0"),
    (["sim", "--trades-per-minute", "inf"], "argument --trades-per-minute: 'inf' is not a rate above 0"),
    (["sim", "--max-batch", "0"], "argument --max-batch: '0' is not a whole number >= 1"),
    (["sim", "--max-batch", "2.5"], "argument --max-batch: '2.5' is not a whole number >= 1"),
    (["sim", "--seed", "-1"], "argument --seed: '-1' is not a whole number >= 0"),
    (["demo", "--seconds", "-5"], "argument --seconds: '-5' is not a number of seconds above 0"),
    (["demo", "--seconds", "0"], "argument --seconds: '0' is not a number of seconds above 0"),
    (["demo", "--seconds", "nan"], "argument --seconds: 'nan' is not a number of seconds above 0"),
    (["demo", "--seconds", "inf"], "argument --seconds: 'inf' is not a number of seconds above 0"),
    (["demo", "--seed", "x"], "argument --seed: 'x' is not a whole number >= 0"),
    (["demo", "--log-level", "LOUD"], "argument --log-level: invalid choice: 'LOUD'"),
], ids=" ".join)
def test_bad_values_get_the_usage_error_not_a_traceback(flags: list[str], complaint: str):
    done = subprocess.run([sys.executable, "-m", "pxkit", *flags], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"usage: pxkit {flags[0]} ")
    assert done.stderr.splitlines()[-1].startswith(f"pxkit {flags[0]}: error: {complaint}")
    assert "Traceback" not in done.stderr


def test_log_level_names_are_taken_in_any_case(serve):
    process, _ = serve("--log-level", "info")
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 130
    assert "INFO:pxkit.sim.server:simulated gateway listening on" in process.stderr.read()


def served_time(url: str) -> datetime:
    """The simulated time the gateway serves, from the Date header of an answer (whole seconds)."""
    return parsedate_to_datetime(httpx.post(f"{url}/api/Auth/loginKey", json={"userName": "demo", "apiKey": "demo"},
                                            timeout=10).headers["Date"])


def test_sim_starts_at_the_default_start_like_the_embedded_simulator(serve):
    _, url = serve()
    assert DEFAULT_START <= served_time(url) < DEFAULT_START + timedelta(minutes=1)  # its clock runs from there


def test_sim_start_now_follows_the_wall_clock(serve):
    before = datetime.now(UTC).replace(microsecond=0)
    _, url = serve("--start", "NOW")
    assert before <= served_time(url) <= datetime.now(UTC)


def test_sim_start_takes_an_iso_time(serve):
    _, url = serve("--start", "2026-06-15T13:30:00Z")
    start = datetime(2026, 6, 15, 13, 30, tzinfo=UTC)
    assert start <= served_time(url) < start + timedelta(minutes=1)


MNQ = "CON.F.US.MNQ.H26"
TOKEN_START = TokenIssuer(b"any").issue("demo")[:20]  # every simulator token starts with this header
NO_GATEWAY = {k: v for k, v in os.environ.items() if not k.startswith("PROJECT_X_")}  # the embedded simulator


@pytest.fixture
def record():
    processes: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        process = subprocess.Popen([str(SCRIPT), "record", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, env={**NO_GATEWAY, "PYTHONUNBUFFERED": "1"})
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_record_writes_a_recording_that_reads_back_and_says_what_it_wrote(record, tmp_path: Path):
    out = tmp_path / "rec"
    process = record("MNQ", "--out", str(out), "--seconds", "3", "--flush-interval", "0.5")
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert stderr == ""
    announced, wrote = stdout.splitlines()
    assert announced == f"pxkit record: MNQ {MNQ} from the embedded simulator to {out}"
    frames = {kind: read_recording(out, kind, contract=MNQ) for kind in ("trades", "quotes", "depth")}
    assert all(frame.height > 0 for frame in frames.values()), {k: f.height for k, f in frames.items()}
    assert set(frames["trades"]["contract"]) == {MNQ} and frames["trades"]["price"].min() > 0
    assert wrote == (f"pxkit record: wrote {frames['trades'].height} trades, {frames['quotes'].height} quotes, "
                     f"{frames['depth'].height} depth in {len(files(out))} files")  # one compacted file each
    assert DEFAULT_START <= frames["trades"]["timestamp"].min() < DEFAULT_START + timedelta(minutes=1)


def test_record_ends_on_interrupt_with_one_line_and_keeps_what_it_recorded(record, tmp_path: Path):
    process = record("MNQ", "--out", str(tmp_path), "--flush-interval", "0.2")
    assert first_line(process).startswith(f"pxkit record: MNQ {MNQ} from the embedded simulator to ")
    trades = tmp_path / "trades"
    deadline = time.monotonic() + 30
    while len(parts := list(trades.rglob("part-*.parquet"))) < 2:  # two flushes of trades are on disk
        assert time.monotonic() < deadline and process.poll() is None, "no two trades parts within 30 s"
        time.sleep(0.02)
    on_disk = sum(pl.read_parquet(p).height for p in parts)
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 130
    assert process.stderr.read() == "pxkit record: interrupted\n"  # one line, no traceback
    assert process.stdout.read() == ""  # it was stopped, not finished: no "wrote" line
    kept = read_recording(tmp_path, "trades", contract=MNQ)
    assert kept.height >= on_disk > 0 and kept["seq"].is_unique().all()
    # it stopped its recorder: what it held was written, and this run's parts of each partition merged into one
    assert [p.name for p in files(trades)] == [f"part-{parts[0].name.split('-')[1]}.parquet"]
    assert all(p.name.startswith("part-") for p in files(tmp_path))  # no temporary left behind
    assert all(read_recording(tmp_path, kind).height > 0 for kind in ("trades", "quotes", "depth"))


RECORD_BAD_VALUES = [
    (["MNQ", "--out", "{file}"], "argument --out: {file} is not a directory"),
    (["MNQ", "--out", "{dir}", "--flush-interval", "0"],
     "argument --flush-interval: '0' is not a number of seconds above 0 and at most 3600"),
    (["MNQ", "--out", "{dir}", "--flush-interval", "7200"],
     "argument --flush-interval: '7200' is not a number of seconds above 0 and at most 3600"),
    (["MNQ", "--out", "{dir}", "--seconds", "-1"], "argument --seconds: '-1' is not a number of seconds above 0"),
    (["MNQ", "--out", "{dir}", "--seconds", "nan"], "argument --seconds: 'nan' is not a number of seconds above 0"),
    (["--out", "{dir}"], "the following arguments are required: SYMBOLS"),
    (["MNQ"], "the following arguments are required: --out"),
]


@pytest.mark.parametrize(("flags", "complaint"), RECORD_BAD_VALUES, ids=[" ".join(f) for f, _ in RECORD_BAD_VALUES])
def test_record_refuses_bad_values_with_the_usage_error_and_writes_nothing(tmp_path: Path, flags: list[str],
                                                                           complaint: str):
    places = {"file": str(tmp_path / "taken.txt"), "dir": str(tmp_path / "rec")}
    Path(places["file"]).write_text("not a recording\n")
    done = subprocess.run([sys.executable, "-m", "pxkit", "record", *(f.format(**places) for f in flags)],
                          capture_output=True, text=True, timeout=60, env=NO_GATEWAY)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("usage: pxkit record ")
    assert done.stderr.splitlines()[-1] == f"pxkit record: error: {complaint.format(**places)}"
    assert "Traceback" not in done.stderr
    assert files(tmp_path) == [Path(places["file"])] and Path(places["file"]).read_text() == "not a recording\n"


def test_record_of_an_unknown_symbol_says_so_and_exits_1(record, tmp_path: Path):
    process = record("NOPE", "--out", str(tmp_path / "rec"), "--seconds", "30")
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1 and stdout == ""
    assert stderr.splitlines()[-1] == "pxkit record: no contract found for symbol 'NOPE'"  # the command's own line
    assert "Traceback" not in stderr and all("'NOPE'" in line for line in stderr.splitlines())
    assert files(tmp_path) == []  # nothing recorded


def test_record_prints_neither_the_embedded_simulators_key_nor_its_tokens(record, tmp_path: Path):
    process = record("MNQ", "--out", str(tmp_path), "--seconds", "1", "--log-level", "DEBUG")
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "DEBUG:pxkit.client.auth:session token installed" in stderr  # it did log in, at DEBUG
    secrets = {"api key": Credentials().api_key, "start of a token": TOKEN_START}
    assert leaks(secrets, {"stdout": [stdout], "stderr": [stderr]}) == []


async def test_record_prints_neither_a_gateways_key_nor_its_tokens(tmp_path: Path):
    user, key = "trader-7", "pk_live_3c1d9e8f7a6b5c4d"
    async with SimServer(config=SimConfig(seed=1, trades_per_minute=600), credentials=Credentials(user, key),
                         realtime=True, start=DEFAULT_START) as sim:
        issued = record_tokens(sim)
        env = {**NO_GATEWAY, "PROJECT_X_USERNAME": user, "PROJECT_X_API_KEY": key, "PROJECT_X_API_URL": sim.base_url,
               "PROJECT_X_USER_HUB_URL": sim.user_hub_url, "PROJECT_X_MARKET_HUB_URL": sim.market_hub_url}
        process = await asyncio.create_subprocess_exec(
            str(SCRIPT), "record", "MNQ", "--out", str(tmp_path), "--seconds", "1", "--log-level", "DEBUG",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
        try:
            out, err = (s.decode() for s in await asyncio.wait_for(process.communicate(), 60))
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, err
    assert out.startswith(f"pxkit record: MNQ {MNQ} from {sim.base_url} to {tmp_path}") and issued
    secrets = {"api key": key, "start of a token": TOKEN_START} | {f"token {n}": t for n, t in enumerate(issued)}
    secrets |= {f"signature of token {n}": t.rsplit(".", 1)[1] for n, t in enumerate(issued)}
    assert leaks(secrets, {"stdout": [out], "stderr": [err]}) == []
    assert read_recording(tmp_path, "trades", contract=MNQ).height > 0
