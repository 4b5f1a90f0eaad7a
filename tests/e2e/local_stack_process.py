"""`python -m wabacast_local` as a subprocess: started, waited for through local.json, stopped with a signal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

# A cold start takes 5-10 s here; on a 2-core machine running the suite beside it, 20-40 s have been seen.
STARTUP_TIMEOUT_SECONDS = 90
SHUTDOWN_TIMEOUT_SECONDS = 15


class LocalStackProcess:
    def __init__(
        self,
        work_dir: Path,
        *extra_args: str,
        port: int = 0,
        state_dir: Path | None = None,
        sandbox_callbacks: bool = False,
    ) -> None:
        """`sandbox_callbacks`: off unless a test is about them, so the other tests' stacks answer only their own
        requests (the local API function has one execution environment, and callbacks would queue in front)."""
        self.work_dir = work_dir
        self.state_file = (state_dir or work_dir / "state") / "local.json"
        self.stdout_path = work_dir / "stdout.log"
        self.stderr_path = work_dir / "stderr.log"
        work_dir.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("wb") as stdout, self.stderr_path.open("wb") as stderr:
            # Files, not pipes: nobody reads while the tests run, and a full pipe would block the stack.
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                [
                    sys.executable,
                    "-m",
                    "wabacast_local",
                    "--port",
                    str(port),
                    "--state-dir",
                    str(self.state_file.parent),
                    "--sandbox-callbacks" if sandbox_callbacks else "--no-sandbox-callbacks",
                    *extra_args,
                ],
                cwd=work_dir,
                stdout=stdout,
                stderr=stderr,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def logs(self) -> str:
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {path.name} (last 4000 characters) ---\n{text[-4000:]}")
        return "\n".join(parts)

    def wait_until_ready(self) -> dict[str, Any]:
        """The content of local.json once the stack has written it; fails the test if it exits or takes too long."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the local stack exited with {self.process.returncode} during startup\n{self.logs()}")
            if self.state_file.exists():
                state: dict[str, Any] = json.loads(self.state_file.read_text())
                return state
            time.sleep(0.1)
        self.process.kill()
        pytest.fail(f"no {self.state_file} after {STARTUP_TIMEOUT_SECONDS} s\n{self.logs()}")

    def wait_for_exit(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self, signal_number: int = signal.SIGTERM) -> int:
        """Send `signal_number` and wait; kills the process if it does not stop in time. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal_number)
            try:
                self.process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def shutdown_log(self) -> str:
        """What the stack wrote to stderr from the moment it started stopping."""
        return self.stderr_path.read_text(errors="replace").rpartition("stopping")[2]
