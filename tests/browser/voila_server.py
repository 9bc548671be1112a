"""A throw-away Voila app for browser tests: one notebook served on 127.0.0.1, run from the notebook's folder so the
`voila.json` there applies, as it does for a user."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from jupyter_client import BlockingKernelClient

from browser.lab_server import end_process, environment, free_port, wait_answering

TOKEN = "voila-test"  # Voila's own access token, not a gateway credential


class VoilaServer:
    """`voila <notebook>` with its Jupyter dirs under `home`; `url` opens the app; `stop()` ends it by pid."""

    def __init__(self, notebook: Path, home: Path, *, env: dict[str, str] | None = None,
                 startup_timeout: float = 60.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/?token={TOKEN}"
        self.connections = home / "connections"  # the kernels' connection files
        self.connections.mkdir(exist_ok=True)
        self.log_path = home / "voila.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "voila", notebook.name, "--no-browser", f"--port={self.port}",
             "--Voila.ip=127.0.0.1", f"--token={TOKEN}", f"--Voila.connection_dir_root={self.connections}"],
            cwd=notebook.parent, env=environment(home, env), stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10) as http:
                wait_answering(http, self.process, f"/voila/static/voila.js?token={TOKEN}", startup_timeout,
                               self.log)
        except BaseException:
            self.stop()
            raise

    def value(self, kernel_id: str, code: str, timeout: float = 60.0) -> Any:
        """Run `code` on the app's kernel `kernel_id` and return the JSON it printed last; a failure raises.

        Voila's websocket passes only comm and kernel-info messages to a kernel, so the test talks to the kernel as
        a second client through its connection file (ZMQ on loopback)."""
        found = list(self.connections.glob(f"**/kernel-{kernel_id}.json"))
        if len(found) != 1:
            raise AssertionError(f"no connection file for kernel {kernel_id} under {self.connections}")
        client = BlockingKernelClient(connection_file=str(found[0]))
        client.load_connection_file()
        client.start_channels()
        try:
            msg_id = client.execute(code, store_history=False)
            printed: list[str] = []
            deadline = time.monotonic() + timeout
            while True:
                message = client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
                if message["parent_header"].get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message["content"]
                if kind == "stream" and content["name"] == "stdout":
                    printed.append(content["text"])
                elif kind == "error":
                    raise AssertionError(f"kernel code failed: {content['ename']}: {content['evalue']}")
                elif kind == "status" and content["execution_state"] == "idle":
                    return json.loads("".join(printed).strip().splitlines()[-1])
        finally:
            client.stop_channels()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        end_process(self.process)
