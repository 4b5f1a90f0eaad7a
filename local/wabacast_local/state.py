"""`.wabacast/local.json`: how tools and tests find a running local stack (URLs and keys).

The file exists while a stack is running: it is removed at start (the previous run's keys died with its in-memory
emulator) and at clean shutdown. Components add their own entries (e.g. "sandboxUrl") with `update`, which merges
into what is there and replaces the file atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STATE_FILE_NAME = "local.json"


class StateFile:
    def __init__(self, directory: Path) -> None:
        self.path = directory / STATE_FILE_NAME
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        try:
            content = json.loads(self.path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        return content if isinstance(content, dict) else {}

    def update(self, entries: Mapping[str, Any]) -> dict[str, Any]:
        """Merge `entries` into the file and return the new content."""
        with self._lock:
            content = {**self.read(), **entries}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # mkstemp creates the file readable by its owner only, which suits a file holding API keys.
            descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".local-", suffix=".json")
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                    json.dump(content, file, indent=2)
                    file.write("\n")
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            return content

    def remove(self) -> None:
        with self._lock:
            self.path.unlink(missing_ok=True)
