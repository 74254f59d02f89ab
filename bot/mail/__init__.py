"""The email channel: reading replies from an IMAP account.

- `bot.mail.imap`: `MailReader` syncs folders incrementally (UIDVALIDITY / last UID per folder in
  a `StateStore`), waits with IDLE, and reports `MailConnectionError` for the caller to retry.
- `bot.mail.decode`: `parse_message` reads real-world Chinese mail (GB2312 labels on GBK text,
  RFC 2047/2231, raw 8-bit headers, HTML-only bodies) without ever raising.
- `bot.mail.classify`: `classify` tells an acknowledgement (受理/自动回复) from an answer (答复),
  and says when it is not sure (`Verdict.uncertain`: the flag ack_or_reply_uncertain).
"""

from bot.mail.classify import DEFAULT_RULES, UNCERTAIN_FLAG, Rules, Verdict, classify, classify_message
from bot.mail.decode import Attachment, MailMessage, extract_addresses, parse_message
from bot.mail.imap import (FetchedMessage, FolderState, ImapSettings, MailAuthError,
                           MailConnectionError, MailError, MailProtocolError, MailReader,
                           MemoryStateStore, StateStore, SyncStats, with_retry)

__all__ = [
    "Attachment", "DEFAULT_RULES", "FetchedMessage", "FolderState", "ImapSettings",
    "MailAuthError", "MailConnectionError", "MailError", "MailMessage", "MailProtocolError",
    "MailReader", "MemoryStateStore", "Rules", "StateStore", "SyncStats", "UNCERTAIN_FLAG", "Verdict",
    "classify", "classify_message", "extract_addresses", "parse_message", "with_retry",
]
