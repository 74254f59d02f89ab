"""MailReader against a real Dovecot (tests/mailserver.py): incremental sync, constant idle cost,
UIDVALIDITY changes, dropped connections, IDLE, INTERNALDATE, and no password anywhere."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from mailserver import CATCHALL_DOMAIN, PLUS_DOMAIN, free_port, make_message

from bot.mail.decode import parse_message
from bot.mail.imap import (FolderState, ImapSettings, MailAuthError, MailConnectionError, MailReader,
                           MemoryStateStore, with_retry)


def settings_for(server, folders=("INBOX", "Junk"), **kw) -> ImapSettings:
    return ImapSettings(host=server.host, port=server.imap_port, user=server.user,
                        password=server.password, tls=False, folders=list(folders), timeout=10, **kw)


class Collector:
    """A caller's handle: keeps every delivery, and the unique ones by dedup key."""

    def __init__(self):
        self.calls = []
        self.unique = {}

    def __call__(self, msg):
        self.calls.append(msg)
        self.unique.setdefault(msg.dedup_key(), msg)


@pytest.fixture
def reader_for(dovecot):
    readers = []

    def make(folders=("INBOX", "Junk"), store=None, **kw):
        r = MailReader(settings_for(dovecot, folders), store or MemoryStateStore(), **kw)
        readers.append(r)
        return r

    yield make
    for r in readers:
        r.close()


def test_first_sync_gets_everything_then_nothing(dovecot, reader_for):
    dovecot.deliver(make_message(1), rcpt=f"inspector@{PLUS_DOMAIN}")
    dovecot.deliver(make_message(2, subject="答复：路灯"), rcpt=f"inspector+k7x2@{PLUS_DOMAIN}")
    dovecot.deliver(make_message(3), rcpt=f"tok93@{CATCHALL_DOMAIN}")  # catch-all domain
    dovecot.append(make_message(4), folder="Junk")
    reader = reader_for()
    got = Collector()
    stats = reader.sync(got)
    assert stats.new_messages == 4 and stats.folders == 2
    assert stats.per_folder == {"INBOX": 3, "Junk": 1}
    assert sorted(stats.full_resyncs) == ["INBOX", "Junk"]  # first run
    inbox = [m for m in got.calls if m.folder == "INBOX"]
    assert [m.uid for m in inbox] == [1, 2, 3]
    assert parse_message(inbox[1].raw).subject == "答复：路灯"
    for m in got.calls:
        assert m.internaldate.tzinfo == timezone.utc
        assert abs(datetime.now(timezone.utc) - m.internaldate) < timedelta(minutes=5)
        assert m.size == len(m.raw) and m.uidvalidity > 0
        assert m.message_id.startswith("<msg-")
    state = reader.store.get(reader.settings.account, "INBOX")
    assert state.last_uid == 3 and state.uidvalidity == inbox[0].uidvalidity
    # nothing new: nothing fetched, one command (EXAMINE) per folder
    again = reader.sync(got)
    assert again.new_messages == 0 and again.commands == 2 and len(got.calls) == 4
    # BODY.PEEK on EXAMINE: nothing was marked \Seen
    with dovecot.imap() as c:
        c.select_folder("INBOX", readonly=True)
        assert all(b"\\Seen" not in f for f in c.get_flags(c.search("ALL")).values())


@pytest.mark.parametrize("size", [10, 2000])
def test_idle_cycle_costs_the_same_whatever_the_mailbox_size(dovecot, reader_for, size):
    dovecot.append_many([make_message(i) for i in range(size)])
    reader = reader_for()
    first = reader.sync(lambda m: None)
    assert first.new_messages == size
    assert first.commands == 2 + 1 + -(-size // 200)  # 2 EXAMINE, 1 SEARCH, FETCH batches of 200
    cycles = [reader.sync(lambda m: None) for _ in range(3)]
    assert [c.new_messages for c in cycles] == [0, 0, 0]
    assert [c.commands for c in cycles] == [2, 2, 2]


def test_a_new_message_is_the_only_one_fetched(dovecot, reader_for):
    for i in range(5):
        dovecot.deliver(make_message(i))
    reader = reader_for()
    reader.sync(lambda m: None)
    dovecot.deliver(make_message(99, subject="新的答复"))
    got = Collector()
    stats = reader.sync(got)
    assert [parse_message(m.raw).subject for m in got.calls] == ["新的答复"]
    assert got.calls[0].uid == 6
    assert stats.commands == 4  # EXAMINE INBOX, UID SEARCH 6:*, UID FETCH, EXAMINE Junk
    assert reader.store.get(reader.settings.account, "INBOX").last_uid == 6


def test_expunged_messages_do_not_cost_a_search_forever(dovecot, reader_for):
    for i in range(3):
        dovecot.deliver(make_message(i))
    reader = reader_for(folders=["INBOX"])
    reader.sync(lambda m: None)
    dovecot.deliver(make_message(9))
    with dovecot.imap() as c:  # the newest is deleted before the reader sees it
        c.select_folder("INBOX")
        c.delete_messages([4])
        c.expunge()
    stats = reader.sync(lambda m: pytest.fail("nothing new should be delivered"))
    assert stats.new_messages == 0
    assert reader.store.get(reader.settings.account, "INBOX").last_uid == 4
    assert reader.sync(lambda m: None).commands == 1


def test_multiple_folders_and_a_missing_one(dovecot, reader_for):
    dovecot.deliver(make_message(1))
    dovecot.append(make_message(2), folder="Junk")
    dovecot.append(make_message(3), folder="Junk")
    reader = reader_for(folders=["INBOX", "Junk", "垃圾邮件"])
    got = Collector()
    stats = reader.sync(got)
    assert [(m.folder, m.uid) for m in got.calls] == [("INBOX", 1), ("Junk", 1), ("Junk", 2)]
    assert stats.missing_folders == ["垃圾邮件"] and stats.folders == 2
    dovecot.append(make_message(4), folder="Junk")
    got2 = Collector()
    reader.sync(got2)
    assert [(m.folder, m.uid) for m in got2.calls] == [("Junk", 3)]


def test_uidvalidity_change_triggers_a_full_resync_the_caller_can_deduplicate(dovecot, reader_for):
    for i in range(4):
        dovecot.deliver(make_message(i))
    dovecot.append(make_message(10), folder="Junk")
    reader = reader_for()
    got = Collector()
    reader.sync(got)
    old = reader.store.get(reader.settings.account, "INBOX").uidvalidity
    # the server renumbers INBOX (a migration keeps the messages)
    dovecot.set_uidvalidity("INBOX", old + 1000)
    # and Junk is deleted and recreated (a new folder: its old messages are gone)
    with dovecot.imap() as c:
        c.delete_folder("Junk")
        c.create_folder("Junk")
    dovecot.append(make_message(11), folder="Junk")
    stats = reader.sync(got)
    assert sorted(stats.full_resyncs) == ["INBOX", "Junk"]
    assert stats.per_folder == {"INBOX": 4, "Junk": 1}  # everything delivered again
    assert len(got.calls) == 5 + 5
    assert len(got.unique) == 6  # ... and deduplicated by (Message-ID, INTERNALDATE, size)
    assert reader.store.get(reader.settings.account, "INBOX") == FolderState("INBOX", old + 1000, 4)
    assert reader.sync(got).new_messages == 0


@pytest.mark.parametrize("kick_at", [3, 7])
def test_dropped_connection_mid_sync_loses_nothing(dovecot, reader_for, kick_at):
    raws = [make_message(i) for i in range(12)]
    for r in raws:
        dovecot.deliver(r)
    reader = reader_for(batch_size=5)
    got = Collector()
    kicked = []

    def handle(msg):
        got(msg)
        if len(got.calls) == kick_at and not kicked:
            kicked.append(True)
            dovecot.kill_connections()  # the server drops the session while we work

    with pytest.raises(MailConnectionError) as exc:
        reader.sync(handle)
    err = str(exc.value)
    assert f"{dovecot.user}@{dovecot.host}:{dovecot.imap_port}" in err and dovecot.password not in err
    assert not reader.connected
    # batches are recorded only when complete: the first one(s) are safe
    done = reader.store.get(reader.settings.account, "INBOX").last_uid
    assert done == (5 if kick_at <= 5 else 10)
    stats = with_retry(lambda: reader.sync(handle), attempts=3, delay=0)
    assert stats.new_messages == 12 - done
    uids = [m.uid for m in got.calls if m.folder == "INBOX"]
    assert set(uids) == set(range(1, 13))  # every message at least once
    assert len(uids) == 12  # and here exactly once: the drop came between batches
    assert reader.store.get(reader.settings.account, "INBOX").last_uid == 12
    assert len(got.unique) == 12


def test_a_failing_handle_redelivers_at_most_its_batch(dovecot, reader_for):
    for i in range(12):
        dovecot.deliver(make_message(i))
    reader = reader_for(folders=["INBOX"], batch_size=5)
    got = Collector()

    def crashing(msg):
        got(msg)
        if msg.uid == 8:
            raise RuntimeError("database is locked")

    with pytest.raises(RuntimeError, match="database is locked"):
        reader.sync(crashing)
    assert reader.store.get(reader.settings.account, "INBOX").last_uid == 5
    assert reader.connected  # the caller's error is not a connection error
    reader.sync(got)
    uids = [m.uid for m in got.calls]
    assert uids == [1, 2, 3, 4, 5, 6, 7, 8] + list(range(6, 13))
    assert len(got.unique) == 12


def test_server_restart_then_retry(dovecot, reader_for):
    dovecot.deliver(make_message(1))
    reader = reader_for()
    got = Collector()
    reader.sync(got)
    dovecot.restart()
    dovecot.deliver(make_message(2))
    sleeps = []
    stats = with_retry(lambda: reader.sync(got), attempts=3, delay=0.1, sleep=sleeps.append)
    assert stats.new_messages == 1 and len(sleeps) == 1
    assert len(got.unique) == 2


def test_idle_wakes_on_new_mail_from_another_thread(dovecot, reader_for):
    reader = reader_for()
    reader.sync(lambda m: None)
    assert reader.has_idle
    t0 = time.monotonic()
    assert reader.idle_wait(0.5) is False  # no mail: times out
    assert 0.4 < time.monotonic() - t0 < 3
    timer = threading.Timer(0.3, dovecot.deliver, args=(make_message(5, subject="IDLE 唤醒"),))
    timer.start()
    try:
        t0 = time.monotonic()
        assert reader.idle_wait(20) is True
        assert time.monotonic() - t0 < 10
    finally:
        timer.join()
    got = Collector()
    stats = reader.sync(got)
    assert stats.new_messages == 1 and parse_message(got.calls[0].raw).subject == "IDLE 唤醒"


def test_idle_sees_mail_that_arrived_since_the_last_sync(dovecot, reader_for):
    reader = reader_for(folders=["INBOX"])
    reader.sync(lambda m: None)
    dovecot.deliver(make_message(1))
    t0 = time.monotonic()
    assert reader.idle_wait(20) is True
    assert time.monotonic() - t0 < 5
    # with two folders, INBOX is re-selected before IDLE: UIDNEXT tells
    reader2 = reader_for(folders=["INBOX", "Junk"])
    reader2.sync(lambda m: None)
    dovecot.deliver(make_message(2))
    assert reader2.idle_wait(20) is True


def test_polling_fallback_without_idle(dovecot, reader_for):
    reader = reader_for(use_idle=False, poll_interval=0.2)
    reader.sync(lambda m: None)
    start = reader.commands
    assert reader.idle_wait(0.5) is False
    assert reader.commands - start >= 3  # EXAMINE INBOX then NOOPs
    timer = threading.Timer(0.3, dovecot.deliver, args=(make_message(1),))
    timer.start()
    try:
        assert reader.idle_wait(20) is True
    finally:
        timer.join()


def test_internaldate_comes_from_the_server(dovecot, reader_for):
    when = datetime(2024, 6, 3, 16, 20, 5, tzinfo=timezone(timedelta(hours=8)))
    dovecot.append(make_message(1), internaldate=when)  # Date header says 10:00 +0800
    reader = reader_for(folders=["INBOX"])
    got = Collector()
    reader.sync(got)
    assert got.calls[0].internaldate == datetime(2024, 6, 3, 8, 20, 5, tzinfo=timezone.utc)
    assert got.calls[0].internaldate.tzinfo == timezone.utc


def test_password_never_shown(dovecot, caplog):
    s = settings_for(dovecot)
    assert dovecot.password not in repr(s) and dovecot.password not in str(s)
    assert str(s) == f"{dovecot.user}@{dovecot.host}:{dovecot.imap_port}"
    caplog.set_level(logging.DEBUG)
    with MailReader(s) as reader:
        assert reader.connected and dovecot.password not in repr(reader)
    assert dovecot.password not in caplog.text
    wrong = ImapSettings(dovecot.host, dovecot.imap_port, dovecot.user, "wrong-" + dovecot.password,
                         tls=False, timeout=10)
    with pytest.raises(MailAuthError) as exc:
        MailReader(wrong).connect()
    assert wrong.password not in str(exc.value) and wrong.password not in repr(exc.value)
    assert dovecot.user in str(exc.value)
    closed = ImapSettings(dovecot.host, free_port(), dovecot.user, dovecot.password, tls=False, timeout=5)
    with pytest.raises(MailConnectionError) as exc:
        MailReader(closed).sync(lambda m: None)
    assert f"{dovecot.user}@{dovecot.host}:{closed.port}" in str(exc.value)
    assert dovecot.password not in str(exc.value) and dovecot.password not in repr(exc.value)
    assert dovecot.password not in caplog.text


def test_tls_is_the_default(dovecot):
    s = ImapSettings(dovecot.host, dovecot.imap_port, dovecot.user, dovecot.password, timeout=5)
    assert s.tls is True and ImapSettings("imap.example.org").port == 993
    with pytest.raises(MailConnectionError, match="connect"):  # TLS handshake against plain IMAP
        MailReader(s).connect()


def test_a_connection_dropped_during_idle_raises_promptly(dovecot, reader_for):
    reader = reader_for(folders=["INBOX"])
    reader.sync(lambda m: None)
    timer = threading.Timer(0.3, dovecot.kill_connections)
    timer.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(MailConnectionError, match="IDLE"):
            reader.idle_wait(20)
    finally:
        timer.join()
    assert time.monotonic() - t0 < 10 and not reader.connected
    dovecot.deliver(make_message(1))
    assert with_retry(lambda: reader.sync(lambda m: None), delay=0).new_messages == 1


def test_settings_from_an_accounts_file_entry(monkeypatch):
    from bot.accounts import ImapAccount

    acc = ImapAccount(name="inbox-1", host="imap.example.org", user="inspector@example.org",
                      password_env="MB_TEST_IMAP_PW", folders=["INBOX", "Junk"])
    monkeypatch.setenv("MB_TEST_IMAP_PW", "s3cret-value")
    s = ImapSettings.from_account(acc, timeout=5)
    assert (s.host, s.port, s.tls, s.folders, s.account, s.timeout) == \
        ("imap.example.org", 993, True, ["INBOX", "Junk"], "inbox-1", 5)
    assert s.password == "s3cret-value" and "s3cret" not in repr(s) + str(s)
    assert MemoryStateStore().get("inbox-1", "INBOX") == FolderState("INBOX", None, 0)


def test_fixture_addressing(dovecot, reader_for):
    """Plain, plus and catch-all addresses reach inspector; clerk is separate; unknown is refused."""
    import smtplib

    dovecot.deliver(make_message(1), rcpt=f"Inspector+UPPER@{PLUS_DOMAIN}")
    dovecot.deliver(make_message(2), rcpt=f"clerk@{PLUS_DOMAIN}")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        dovecot.deliver(make_message(3), rcpt=f"nobody@{PLUS_DOMAIN}")
    got = Collector()
    reader_for(folders=["INBOX"]).sync(got)
    assert len(got.calls) == 1
    with dovecot.imap(dovecot.other_user) as c:
        assert c.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1
