"""Letters that read like a citizen's: a question bank by field, real place names, Faker (zh_CN).

The writer (bot.letters.writer) is the public face; the bank (bot.letters.bank), the places
(bot.letters.places) and the near-duplicate check (bot.letters.similarity) are its parts.
"""

from __future__ import annotations

from bot.letters.bank import Bank, Field, load_bank
from bot.letters.similarity import THRESHOLD
from bot.letters.writer import BankExhausted, LetterContent, LetterWriter, letter_text, reply_token

__all__ = ["Bank", "BankExhausted", "Field", "LetterContent", "LetterWriter", "THRESHOLD", "field_for",
           "letter_text", "load_bank", "question_bank", "reply_token"]


def question_bank() -> tuple[Field, ...]:
    return load_bank().fields


def field_for(site_name: str) -> Field:
    """The bank field of a site, by its name (宝鸡市教育局 -> education)."""
    return load_bank().field_for(site_name)
