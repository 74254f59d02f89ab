"""Who answers a captcha. By default a person: never skipped, never guessed silently."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path


class TerminalCaptcha:
    """Saves the captcha image, shows its path and reads the answer typed at the terminal.

    Without an answer (end of input) it returns None and the letter goes to the inspector."""

    label = "inspector at the terminal"

    def __init__(self, folder: Path, stream_in=None, stream_out=None):
        self.folder = Path(folder)
        self.stream_in = stream_in or sys.stdin
        self.stream_out = stream_out or sys.stderr

    async def answer(self, image: bytes, site: str) -> str | None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"captcha-{len(list(self.folder.glob('captcha-*.png'))) + 1}.png"
        path.write_bytes(image)
        print(f"captcha for {site}: open {path} and type what it shows: ", end="",
              file=self.stream_out, flush=True)
        line = await asyncio.to_thread(self.stream_in.readline)
        answer = line.strip()
        return answer or None
