"""A throw-away JupyterLab server for browser tests: 127.0.0.1, a free port, no token, its own config and data dirs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

SRC = Path(__file__).resolve().parents[2] / "src"  # the kernel imports this checkout's pxkit
CREDENTIALS = "PROJECT_X_"  # settings for the real gateway never reach the kernel: it runs on the simulator
SETTINGS = {
    "IdentityProvider": {"token": ""},
    "PasswordIdentityProvider": {"hashed_password": ""},
    "ServerApp": {"ip": "127.0.0.1", "open_browser": False, "allow_remote_access": False, "allow_root": True},
    "LabApp": {"expose_app_in_browser": True, "news_url": None,
               "check_for_updates_class": "jupyterlab.NeverCheckForUpdate", "extension_manager": "readonly"},
    "LanguageServerManager": {"autodetect": False},
}
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a server under test and its kernels: Jupyter's dirs under `home`, this checkout's pxkit
    first on the path, no PROJECT_X_ settings but those in `extra` (a test's own simulator)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(CREDENTIALS)}
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"), JUPYTER_PLATFORM_DIRS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")])))
    env.update(extra or {})
    return env


def wait_answering(http: httpx.Client, process: subprocess.Popen, path: str, timeout: float, log: Any) -> None:
    """Poll `path` until it answers 200; raise with the server's log if it exits or stays silent."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}:\n{log()}")
        try:
            if http.get(path).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer within {timeout} s:\n{log()}")
        time.sleep(0.1)  # polling a child process's port: nothing to await


def end_process(process: subprocess.Popen, how: signal.Signals = signal.SIGTERM) -> None:
    """Signal a server under test to stop, and kill it if it still runs 15 s later."""
    if process.poll() is not None:
        return
    process.send_signal(how)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        process.wait(5)


class LabServer:
    """JupyterLab serving `root`, with config, data, runtime and IPython dirs under `home`; `stop()` ends it by pid.

    `api(method, path)` calls its REST API with the `_xsrf` cookie sent back as `X-XSRFToken` (jupyter_server asks
    for it on DELETE and POST even with the token off).
    """

    def __init__(self, root: Path, home: Path, *, env: dict[str, str] | None = None,
                 startup_timeout: float = 60.0) -> None:
        self.root, self.home = root, home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = home / "config"
        (config / "labconfig").mkdir(parents=True, exist_ok=True)
        (config / "jupyter_server_config.json").write_text(json.dumps(SETTINGS))
        (config / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
        self.log_path = home / "lab.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
             f"--ServerApp.root_dir={root}"],
            cwd=root, env=environment(home, env), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.http = httpx.Client(base_url=self.url, timeout=10)
        try:
            self._wait_ready(startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        """Until /api/status answers, then fetch /lab once for the `_xsrf` cookie."""
        wait_answering(self.http, self.process, "/api/status", timeout, self.log)
        self.http.get("/lab").raise_for_status()
        if "_xsrf" not in self.http.cookies:
            raise RuntimeError("jupyter lab set no _xsrf cookie")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """A REST call (JSON in and out); raises for an error status."""
        headers = {"X-XSRFToken": self.http.cookies["_xsrf"]}
        answer = self.http.request(method, path, json=body, headers=headers)
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def shutdown_kernels(self) -> None:
        """Delete every session and shut down every kernel, through the API."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")
        for kernel in self.api("GET", "/api/kernels"):
            self.api("DELETE", f"/api/kernels/{kernel['id']}")

    def stop(self) -> None:
        """Shut the kernels down, then end the server by its pid (SIGTERM, SIGKILL after 15 s)."""
        if self.process.poll() is None:
            with contextlib.suppress(httpx.HTTPError, KeyError):  # the server is going anyway
                self.shutdown_kernels()
        end_process(self.process)
        self.http.close()
        self._log.close()
