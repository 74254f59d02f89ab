"""Evidence files: content-addressed under the evidence directory, referenced from the database.

The same bytes are stored once (`ab/abcdef....html`); what refers to them is a database row.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from bot.browser.engine import Evidence


class EvidenceStore:
    def __init__(self, root: Path | str):
        self.root = Path(root)
        self._shots: dict[str, Evidence] = {}
        self._lock = threading.Lock()

    def save(self, kind: str, step: str, data: bytes, ext: str) -> Evidence:
        digest = hashlib.sha256(data).hexdigest()
        rel = f"{digest[:2]}/{digest}.{ext}"
        path = self.root / rel
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)       # never a half-written evidence file
        return Evidence(kind=kind, step=step, path=rel, sha256=digest, size=len(data))

    def screenshot_for(self, html_sha256: str) -> Evidence | None:
        with self._lock:
            return self._shots.get(html_sha256)

    def remember_screenshot(self, html_sha256: str, shot: Evidence) -> None:
        with self._lock:
            self._shots[html_sha256] = shot

    def path(self, rel: str) -> Path:
        return self.root / rel
