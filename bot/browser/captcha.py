"""Who answers a captcha. By default a person: never skipped, never guessed silently."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
from pathlib import Path

from bot.errors import ConfigError


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


class HeadedCaptcha:
    """A headed replay: the inspector types the answer into the page itself and presses Enter
    at the terminal. The engine does not type anything (`in_page`)."""

    label = "inspector in the browser window"
    in_page = True

    def __init__(self, stream_in=None, stream_out=None):
        self.stream_in = stream_in or sys.stdin
        self.stream_out = stream_out or sys.stderr

    async def answer(self, image: bytes, site: str) -> str | None:
        print(f"captcha for {site}: type it into the browser window, then press Enter here: ",
              end="", file=self.stream_out, flush=True)
        line = await asyncio.to_thread(self.stream_in.readline)
        return None if line == "" else line.strip()


class SolverHook:
    """A configured solver, "package.module:function": called with the image bytes and the
    site's name, returns the answer or None (may be a coroutine function). Its name is recorded
    with every letter it answered for."""

    def __init__(self, spec: str, where: str = "captcha_solver"):
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr:
            raise ConfigError(f"key '{where}': expected \"package.module:function\", got {spec!r}")
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"key '{where}': cannot load {spec!r} ({e})") from None
        if not callable(fn):
            raise ConfigError(f"key '{where}': {spec!r} is not a function")
        self.spec, self.fn = spec, fn
        self.label = f"solver {spec}"

    async def answer(self, image: bytes, site: str) -> str | None:
        value = self.fn(image, site)
        if inspect.isawaitable(value):
            value = await value
        return str(value).strip() if value else None


def configured_answerer(solver_spec: str, person=None):
    """The global solver hook (config `captcha.solver`) when one is configured, else `person`
    (None in an unattended run: the letter then waits for the inspector)."""
    return SolverHook(solver_spec, "captcha.solver") if solver_spec else person


def site_answerer(solver_spec: str, fallback):
    """The site's own solver hook when it has one, else the global hook or the person."""
    return SolverHook(solver_spec) if solver_spec else fallback
