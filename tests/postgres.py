"""A real PostgreSQL server for the tests: ``initdb`` into a temporary folder, listening on 127.0.0.1 only.

The server's binaries come from the system packages (Debian's ``postgresql`` puts them in
``/usr/lib/postgresql/<version>/bin``; ``.ci/run`` installs the package when it is missing). PostgreSQL refuses to
run as root, so under root the server runs as the ``postgres`` user the package creates. Each test gets a database
of its own (``PostgresServer.new_database``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

MAX_CONNECTIONS = 40  # low on purpose: a run that leaks connections fails here instead of on a shared server


def postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``postgres`` (None when PostgreSQL is not installed)."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def unavailable_reason() -> str | None:
    """Why a server cannot be started here, in words (None when it can)."""
    if postgres_bin() is None:
        return ("PostgreSQL's server is not installed (initdb not on PATH nor in /usr/lib/postgresql/*/bin): "
                "`apt-get install postgresql` (`.ci/run` does it when it may)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as (PostgreSQL refuses root)"
    import importlib.util

    if importlib.util.find_spec("psycopg2") is None:
        return "psycopg2 is not installed (the grader's dependencies: make venv)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A running server; ``stop`` ends it by its process id and removes its folder."""

    folder: Path
    port: int
    process: subprocess.Popen
    user: str = "grader"

    @classmethod
    def start(cls) -> "PostgresServer":
        binaries = postgres_bin()
        folder = Path(tempfile.mkdtemp(prefix="pg-test-"))
        data, sockets = folder / "data", folder / "sockets"
        sockets.mkdir()
        run_as = {}
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            for path in (folder, sockets):
                os.chown(path, owner.pw_uid, owner.pw_gid)
            run_as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        subprocess.run([str(binaries / "initdb"), "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8",
                        "--no-sync"], check=True, capture_output=True, cwd=folder, **run_as)
        port = _free_port()
        log = open(folder / "server.log", "w")
        process = subprocess.Popen(
            [str(binaries / "postgres"), "-D", str(data), "-p", str(port), "-c", "listen_addresses=127.0.0.1",
             "-c", f"unix_socket_directories={sockets}", "-c", f"max_connections={MAX_CONNECTIONS}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdout=log, stderr=subprocess.STDOUT, cwd=folder, **run_as)
        server = cls(folder, port, process)
        server._wait_ready()
        return server

    def _wait_ready(self, seconds: float = 30.0) -> None:
        import psycopg2

        deadline = time.monotonic() + seconds
        while True:
            try:
                psycopg2.connect(self.url("postgres").replace("postgresql+psycopg2", "postgresql")).close()
                return
            except psycopg2.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.folder / "server.log").read_text()[-2000:]
                    self.stop()
                    raise RuntimeError(f"PostgreSQL did not start: {log}")
                time.sleep(0.2)

    def url(self, database: str) -> str:
        """A SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        """Runs one statement with autocommit; returns its rows (empty when it has none)."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=database)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = f"gradebook_{uuid.uuid4().hex[:12]}"
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def connections(self, database: str) -> int:
        """Client connections open to ``database`` now (this query's own excluded)."""
        rows = self.sql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' "
                        "AND pid <> pg_backend_pid()")
        return int(rows[0][0])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # PostgreSQL's "fast shutdown"
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
