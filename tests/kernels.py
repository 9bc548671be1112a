"""A real ipykernel (the venv's python3) that runs code and returns what it printed."""

from __future__ import annotations

import os
import queue
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel

SRC = str(Path(__file__).resolve().parents[1] / "src")


class Kernel:
    """Runs code in a kernel and returns what it printed (stdout and stderr); `stdout` is the last cell's stdout
    alone, to read values from without the log lines the kernel writes to stderr in between."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": SRC}
        env.pop("PROJECTX_API_KEY", None)
        self.manager, self.client = start_new_kernel(kernel_name="python3", env=env)

        self.late: dict[str, list[str]] = {}  # per request id: what it printed after its cell had finished
        self.last_id = ""
        self.stdout = ""

    def run(self, code: str, timeout: float = 60) -> str:
        """Run `code` as a cell; what it prints is returned, what earlier cells print meanwhile goes to `late`."""
        self.last_id = msg_id = self.client.execute(code)
        out: list[str] = []
        printed: list[str] = []
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no answer from the kernel within {timeout} s to {code!r}")
            kind, content = msg["msg_type"], msg["content"]
            if msg["parent_header"].get("msg_id") != msg_id:
                if kind == "stream":
                    self.late.setdefault(msg["parent_header"].get("msg_id"), []).append(content["text"])
                continue
            if kind == "stream":
                out.append(content["text"])
                if content["name"] == "stdout":
                    printed.append(content["text"])
            elif kind == "error":
                pytest.fail("cell failed: " + "\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                self.stdout = "".join(printed)
                return "".join(out)
