"""`pxkit sim` as a separate process for the browser tests: the notebook's suite trades on it through the
PROJECT_X_* settings, and the test reads the simulator's own orders and positions over its REST API."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from browser.lab_server import end_process, free_port

USER = "demo"


class Gateway:
    """A simulated gateway on 127.0.0.1; `env` points a kernel's suite at it, `orders()`/`positions()` are what the
    simulator holds for the account."""

    def __init__(self, home: Path, *, seed: int = 1, startup_timeout: float = 30.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        key = home / "sim.key"
        key.write_text("browser-test-key\n")
        self._key = "browser-test-key"
        self.log_path = home / "sim.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pxkit.cli", "sim", f"--port={self.port}", f"--seed={seed}", f"--user={USER}",
             f"--api-key-file={key}"],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.http = httpx.Client(base_url=self.url, timeout=10)
        try:
            self._wait_ready(startup_timeout)
            token = self._call("/api/Auth/loginKey", {"userName": USER, "apiKey": self._key})["token"]
            self.http.headers["Authorization"] = f"Bearer {token}"
            self.account_id = self._call("/api/Account/search", {"onlyActiveAccounts": True})["accounts"][0]["id"]
        except BaseException:
            self.stop()
            raise
        self.env = {"PROJECT_X_USERNAME": USER, "PROJECT_X_API_KEY": self._key, "PROJECT_X_API_URL": self.url,
                    "PROJECT_X_USER_HUB_URL": f"{self.url}/hubs/user",
                    "PROJECT_X_MARKET_HUB_URL": f"{self.url}/hubs/market"}

    def _wait_ready(self, timeout: float) -> None:
        """Until the simulator prints that it is ready (it serves no GET to poll)."""
        deadline = time.monotonic() + timeout
        while "pxkit sim ready at" not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pxkit sim did not start:\n{self.log()}")
            time.sleep(0.1)  # polling a child process's output: nothing to await

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = self.http.post(path, json=body)
        answer.raise_for_status()
        data = answer.json()
        if not data.get("success"):
            raise AssertionError(f"{path} failed: {data}")
        return data

    def orders(self) -> list[dict[str, Any]]:
        """The account's working orders at the simulator."""
        return self._call("/api/Order/searchOpen", {"accountId": self.account_id})["orders"]

    def positions(self) -> list[dict[str, Any]]:
        """The account's open positions at the simulator."""
        return self._call("/api/Position/searchOpen", {"accountId": self.account_id})["positions"]

    def until(self, check: Any, timeout: float = 15.0) -> Any:
        """Poll the simulator until `check()` gives a truthy value (returned), or fail with the last one."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"the simulator never got there: last {value!r}")
            time.sleep(0.1)  # polling another process over HTTP: nothing to await

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        self.http.close()
        end_process(self.process, signal.SIGINT)
