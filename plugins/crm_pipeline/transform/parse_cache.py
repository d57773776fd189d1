"""A kept parse of the dbt project that a new warehouse's first build starts from (CRM_DBT_PARSE_CACHE).

dbt saves its parse per warehouse (target/partial_parse.msgpack) and reuses it while the
project, the vars and the profile stay as they were. A new warehouse has none, so its first
build parses the whole project: about 4 s of a core here, as long as building the sample
community itself. Where one checkout builds many short-lived warehouses (the test suite, the
benchmark), CRM_DBT_PARSE_CACHE names a directory that keeps the last parse per engine, and a
new warehouse starts from it:

- the parse is dbt's own, from the same project directory. dbt still compares everything it
  compares for its own saved parse: its version, every project file's hash (a changed file is
  parsed again), the vars, the env vars the project reads, dbt_project.yml;
- what in it names a warehouse is rewritten for the new one: every node's `database` (a
  DuckDB file's stem, a PostgreSQL database's name) and the relation names made from it;
- dbt's profile hash (a hash of the connection settings) is set to the new warehouse's,
  computed by dbt's own profile code from the environment the build will run in.

Anything unexpected (no parse kept, a different engine, dbt's profile code failing, no node
naming a database) copies nothing, and dbt parses the project as it would have. Unset (the
default), nothing here runs: a production warehouse keeps its own parse from day to day.
"""

from __future__ import annotations

import os
import pprint
import tempfile
from pathlib import Path

from crm_pipeline.config import DBT_PROJECT_DIR

PARSE_FILE = "partial_parse.msgpack"
PLACEHOLDER = "__crm_warehouse_database__"  # the database name a kept parse carries


def connection(cli_vars: dict) -> tuple[str, str, str]:
    """(target name, database, profile hash) as dbt will see them, in the current environment:
    dbt's own profile rendering, and its own hash of the connection settings."""
    from argparse import Namespace

    from dbt.config.profile import Profile
    from dbt.config.renderer import ProfileRenderer
    from dbt.contracts.files import FileHash
    from dbt.flags import set_from_args
    from dbt_common.context import set_invocation_context

    set_invocation_context(os.environ)
    set_from_args(Namespace(PROFILES_DIR=str(DBT_PROJECT_DIR)), None)
    profile = Profile.render(ProfileRenderer(cli_vars), "crm_warehouse", None, None, None)
    # As dbt's ManifestLoader.build_manifest_state_check does.
    keys = sorted(profile.credentials.connection_info())
    return profile.target_name, profile.credentials.database, FileHash.from_contents(pprint.pformat(keys)).checksum


def _rename_database(node, old: str, new: str) -> int:
    """Rewrite `database` fields equal to `old`, and relation names quoting it, in place; returns how many."""
    count = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "database" and value == old:
                node[key] = new
                count += 1
            elif key == "relation_name" and isinstance(value, str) and f'"{old}".' in value:
                node[key] = value.replace(f'"{old}".', f'"{new}".')
            else:
                count += _rename_database(value, old, new)
    elif isinstance(node, list):
        for value in node:
            count += _rename_database(value, old, new)
    return count


def _rewrite(data: bytes, old: str, new: str, profile_hash: str | None) -> bytes | None:
    import msgpack

    manifest = msgpack.unpackb(data, raw=False, strict_map_key=False)
    if _rename_database(manifest, old, new) == 0:
        return None
    if profile_hash is not None:
        manifest["state_check"]["profile_hash"]["checksum"] = profile_hash
    return msgpack.packb(manifest, use_bin_type=True)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def seed(cache: Path, target_dir: Path, cli_vars: dict) -> bool:
    """Before a build: give a warehouse with no saved parse the kept one, rewritten for it.
    Runs in the build's environment. True when a parse was placed."""
    mine = target_dir / PARSE_FILE
    if mine.exists():
        return False
    try:
        target_name, database, profile_hash = connection(cli_vars)
        kept = (cache / f"{target_name}.msgpack").read_bytes()
        data = _rewrite(kept, PLACEHOLDER, database, profile_hash)
    except Exception:
        return False
    if data is None:
        return False
    _write_atomically(mine, data)
    return True


def keep(cache: Path, target_dir: Path, cli_vars: dict) -> bool:
    """After a build that parsed the project in full: keep its parse for the next new warehouse."""
    try:
        target_name, database, _ = connection(cli_vars)
        data = _rewrite((target_dir / PARSE_FILE).read_bytes(), database, PLACEHOLDER, None)
    except Exception:
        return False
    if data is None:
        return False
    _write_atomically(cache / f"{target_name}.msgpack", data)
    return True
