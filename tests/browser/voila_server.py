"""A throw-away Voila app for browser tests: one notebook served on 127.0.0.1, run from the notebook's folder so the
`voila.json` there applies, as it does for a user."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from browser.lab_server import environment, free_port, wait_answering

TOKEN = "voila-test"  # Voila's own access token, not a gateway credential


class VoilaServer:
    """`voila <notebook>` with its Jupyter dirs under `home`; `url` opens the app; `stop()` ends it by pid."""

    def __init__(self, notebook: Path, home: Path, *, env: dict[str, str] | None = None,
                 startup_timeout: float = 60.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/?token={TOKEN}"
        self.log_path = home / "voila.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "voila", notebook.name, "--no-browser", f"--port={self.port}",
             "--Voila.ip=127.0.0.1", f"--token={TOKEN}"],
            cwd=notebook.parent, env=environment(home, env), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10) as http:
                wait_answering(http, self.process, f"/voila/static/voila.js?token={TOKEN}", startup_timeout,
                               self.log)
        except BaseException:
            self.stop()
            raise

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
