"""A private PostgreSQL cluster on loopback for the tests, and pytest fixtures around it.

Like Dovecot (tests/mailserver.py), the server is real and private: `initdb` in a temporary
folder (UTF-8, C locale, trust authentication on loopback only, durability off for speed) and
`pg_ctl start` on a free loopback port, with its unix socket in that folder. As root (CI) both run
as the `postgres` user (initdb refuses root). The server's time zone is America/New_York, so that
nothing can lean on the server being in UTC.

`postgres_server` (session) starts ONE cluster the first time a test asks for it and stops it at
the end of the session; `postgres_url` (function) gives each test a fresh database, dropped
afterwards; `any_db_url` runs a test twice, on a SQLite file and on PostgreSQL. A test that needs
PostgreSQL when its binaries are missing errors (never skips): `bash scripts/setup.sh --test`
installs them. conftest.py marks every such test `postgres` (`pytest -m postgres`).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from bot.sandbox.mailserver import free_port

HOST = "127.0.0.1"
SUPERUSER = "postgres"
SERVER_TIMEZONE = "America/New_York"
MISSING = ("PostgreSQL is not installed (initdb/pg_ctl found neither on PATH nor in "
           "/usr/lib/postgresql/*/bin): run `bash scripts/setup.sh --test`")


class PostgresError(RuntimeError):
    pass


def bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, else the newest Debian /usr/lib/postgresql/N/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    found = [Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin")
             if os.access(Path(d) / "initdb", os.X_OK) and os.access(Path(d) / "pg_ctl", os.X_OK)]
    found.sort(key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0)
    return found[-1] if found else None


class PostgresServer:
    """One cluster in a temporary folder; `url(dbname)` is a SQLAlchemy URL for a database of it."""

    def __init__(self):
        self.bin = bin_dir()
        if self.bin is None:
            raise PostgresError(MISSING)
        self.as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="mailbox-bot-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "server.log"
        self.port: int | None = None
        self.running = False

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if proc.returncode != 0:
            raise PostgresError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}\n"
                                f"{self.log_tail()}")
        return proc

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> None:
        if self.as_root:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresError("running as root, and there is no `postgres` user to run the server as "
                                    "(Debian's postgresql package makes one): run `bash scripts/setup.sh --test`") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.dir.chmod(0o700)
        self._run("initdb", "-D", str(self.data), "--auth=trust", f"--username={SUPERUSER}",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        with open(self.data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# mailbox-bot tests: loopback only, speed over durability\n"
                       f"listen_addresses = '{HOST}'\n"
                       f"unix_socket_directories = '{self.dir}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                       f"timezone = '{SERVER_TIMEZONE}'\nlog_timezone = '{SERVER_TIMEZONE}'\n"
                       "max_connections = 200\n")
        # Another worker on the machine may take the free port first: try a few.
        for attempt in range(5):
            self.port = free_port()
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", "60",
                          "-o", f"-p {self.port}", "start")
                self.running = True
                return
            except PostgresError:
                if attempt == 4:
                    raise

    def stop(self) -> None:
        if self.running:
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", timeout=60)
            except (PostgresError, subprocess.TimeoutExpired):
                pass
            self.running = False

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{dbname}"

    def admin(self, sql: str) -> None:
        """One statement on the maintenance database, outside a transaction (CREATE/DROP DATABASE)."""
        import psycopg

        with psycopg.connect(host=HOST, port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        name = f"t_{secrets.token_hex(6)}"
        self.admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- pytest fixtures ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def postgres_server():
    """One cluster for the session, started the first time a test asks for it. Errors (does not
    skip) when PostgreSQL is not installed."""
    if bin_dir() is None:
        pytest.fail(MISSING, pytrace=False)
    server = PostgresServer()
    atexit.register(server.cleanup)      # even when the session is cut short
    problem = None
    try:
        server.start()
    except PostgresError as e:
        problem = str(e)
    if problem is not None:
        server.cleanup()
        pytest.fail(f"could not start PostgreSQL: {problem}", pytrace=False)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def postgres_url(postgres_server):
    """A fresh, empty database of the session cluster (dropped afterwards, connections and all)."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgres"])
def any_db_url(request, tmp_path):
    """The test runs twice: on a SQLite file in tmp_path, and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    return request.getfixturevalue("postgres_url")


POSTGRES_FIXTURES = {"postgres_server", "postgres_url"}


def mark_postgres_tests(items) -> None:
    """`postgres` on every test that uses the cluster, the PostgreSQL half of any_db_url included."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())) or params.get("any_db_url") == "postgres":
            item.add_marker(pytest.mark.postgres)
