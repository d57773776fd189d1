"""Where the test session keeps its files (tests/conftest.py): a RAM disk when there is one with room."""

from __future__ import annotations

import os
import tempfile

import pytest

import conftest
from conftest import session_temp_dir


def test_a_named_directory_the_users_tmpdir_or_the_disk_are_kept(tmp_path):
    chosen = tmp_path / "chosen"
    assert session_temp_dir({"CRM_TEST_TMPDIR": str(chosen)}) == str(chosen) and chosen.is_dir()
    assert oct(chosen.stat().st_mode & 0o777) == oct(0o700)  # jinja's bytecode cache wants it private
    assert session_temp_dir({"CRM_TEST_TMPDIR": "disk"}) is None
    assert session_temp_dir({"TMPDIR": "/var/tmp"}) is None


def test_only_a_tmpfs_with_room_is_taken(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "RAM_DISK", tmp_path)  # a directory on a disk, not a tmpfs
    assert session_temp_dir({}) is None
    monkeypatch.setattr(conftest, "_is_tmpfs", lambda path: True)
    monkeypatch.setattr(conftest, "RAM_DISK_ROOM", 2**62)  # more room than any machine has
    assert session_temp_dir({}) is None
    monkeypatch.setattr(conftest, "RAM_DISK_ROOM", 1)
    assert session_temp_dir({}) == str(tmp_path / f"crm-tests-{os.getuid()}")


def test_this_session_writes_where_it_chose(tmp_path):
    if conftest._TEMP is None:
        pytest.skip("this session keeps its files in the system's temp dir (no RAM disk with room, or TMPDIR set)")
    assert tempfile.gettempdir() == os.environ["TMPDIR"] == conftest._TEMP
    assert str(tmp_path).startswith(conftest._TEMP) and str(conftest._AIRFLOW_HOME).startswith(conftest._TEMP)


def test_a_test_database_commits_without_waiting_for_the_disk(pg_url):
    import psycopg2

    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("show synchronous_commit")
        assert cur.fetchone() == ("off",)
