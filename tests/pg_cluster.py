"""A throwaway PostgreSQL cluster for tests: Debian's server (``apt-get install postgresql``), initialised in a
temporary folder, listening on a free loopback port only, trusted without passwords, stopped and deleted after.
Where PostgreSQL is not installed, the tests that need it are skipped and say so."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import asyncpg
import pytest

USER = "parley"


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self) -> None:
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
        self._initdb, self._pg_ctl = initdb, pg_ctl
        self.folder = Path(tempfile.mkdtemp(prefix="parley-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._databases = 0
        # PostgreSQL refuses to run as root: there, the cluster belongs to the postgres user.
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> str:
        """Starts the cluster; returns the URL of its default database."""
        self._run(self._initdb, "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._run(self._pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    async def new_database(self) -> str:
        """An empty database of its own (one per test); returns its URL."""
        self._databases += 1
        name = f"test_{self._databases}"
        admin = await asyncpg.connect(self.url("postgres"))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(self._pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
