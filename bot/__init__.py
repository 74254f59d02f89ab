"""mailbox-bot: the interactive-response (互动回应) check of Chinese government websites."""

__version__ = "0.1.0"
