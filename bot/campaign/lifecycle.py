"""Letter state transitions. Every transition is an event row with its time, reason and evidence."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.store.models import EvidenceFile, Letter, LetterEvent


def transition(session: Session, letter: Letter, to_state: str, at: datetime, reason: str = "",
               evidence: list[EvidenceFile] | None = None) -> LetterEvent:
    ev = LetterEvent(letter_id=letter.id, at=at, from_state=letter.state, to_state=to_state,
                     reason=reason, evidence_ids=[e.id for e in (evidence or [])])
    letter.state = to_state
    letter.state_changed_at = at
    session.add(ev)
    return ev
