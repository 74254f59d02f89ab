"""The sandbox: a simulated multi-site Chinese government portal on loopback.

Each roster site is played by one of seven platform archetypes (`jact`, `legacy`, `minimal`,
`igi`, `hdjlpt`, the two-step `confirm`, and the message board `board`), with the faults its
roster entry asks for, and follows its scripted behaviour (reply, delete, backdate) on an
injected clock. It is the demo's default target and the test suite's fixture; the bot drives
it exactly as it drives a real site, through scenarios written from docs/sandbox.md.
"""

from bot.sandbox.behaviour import Behaviour, Status, Timeline
from bot.sandbox.server import Sandbox
from bot.sandbox.store import ReceivedLetter

__all__ = ["Sandbox", "Behaviour", "Status", "Timeline", "ReceivedLetter"]
