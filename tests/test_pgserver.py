"""The private PostgreSQL cluster of the tests (tests/pgserver.py) works and is what it says."""

from __future__ import annotations

from sqlalchemy import create_engine, text


def test_fresh_database_is_utf8_and_in_new_york(postgres_url):
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(text("SHOW server_encoding")).scalar() == "UTF8"
            assert conn.execute(text("SHOW timezone")).scalar() == "America/New_York"
            conn.execute(text("CREATE TABLE t (s text)"))
            conn.execute(text("INSERT INTO t VALUES (:s)"), {"s": "宝鸡市应急管理局 领导信箱 ✓"})
            assert conn.execute(text("SELECT s FROM t")).scalar() == "宝鸡市应急管理局 领导信箱 ✓"
            # a fresh database: nothing left from another test
            assert conn.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar() == 1
    finally:
        engine.dispose()


def test_any_db_url_gives_both_backends(any_db_url, request):
    backend = request.node.callspec.params["any_db_url"]
    assert any_db_url.startswith({"sqlite": "sqlite:///", "postgres": "postgresql+psycopg://"}[backend])
    assert (request.node.get_closest_marker("postgres") is not None) == (backend == "postgres")
