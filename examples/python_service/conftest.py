"""The throw-away PostgreSQL of the fleet tests (SPEC section 11).

``SHOPAUTH_PG_DSN`` names a running cluster (``scripts/test.sh`` starts one
with ``scripts/pg.sh`` and passes it on); without it, this session starts
its own the same way and stops it at the end. Every test gets its own
PostgreSQL schema, so tests never see each other's rows. There is no mock of
the database anywhere: without PostgreSQL the fleet tests fail, they are
never skipped.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_SH = ROOT / "scripts" / "pg.sh"


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    given = os.environ.get("SHOPAUTH_PG_DSN")
    if given:
        yield given
        return
    subprocess.run([str(PG_SH), "install"], check=True)
    base = Path(tempfile.mkdtemp(prefix="shopauth-pg-"))
    base.chmod(0o755)  # the server's own user reads it
    try:
        dsn = subprocess.run([str(PG_SH), "start", str(base / "cluster")], check=True,
                             capture_output=True, text=True).stdout.strip()
        yield dsn
    finally:
        subprocess.run([str(PG_SH), "stop", str(base / "cluster")], check=False)
        base.rmdir() if base.exists() and not any(base.iterdir()) else None


@pytest.fixture
def pg_schema() -> str:
    """A fresh schema name for one test."""
    return "t_" + uuid.uuid4().hex[:12]
