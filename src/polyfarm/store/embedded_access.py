"""Who may reach the embedded PostgreSQL: the OS user that runs polyfarm, and no one else.

Three locks, each enough on its own to keep another local user out:

* the socket directory is ``0700`` and the socket itself ``unix_socket_permissions=0700``, both
  owned by the server's user: no one else can even open the socket (root excepted, as always);
* ``pg_hba.conf`` lets the superuser in by ``peer`` authentication only, mapped in
  ``pg_ident.conf`` from the OS user running polyfarm (and the server's own user); every other
  role needs its SCRAM password; there is no ``trust`` line and no TCP line;
* the data directory, the server log and the journal are readable by their owner only.

The API's read-only role ``polyfarm_reader`` logs in with a generated password kept in
``<data_dir>/pgpass`` (``0600``, libpq's password-file format). The DSN names that file
(``passfile=``), so asyncpg and ``psql`` find the password without it ever appearing in a URL,
an argument list or the server log: the role's password is set as a SCRAM verifier computed
here, never as clear text.

A cluster made by an older polyfarm (``trust``, a world-writable socket) is brought to this
state at the next ``polyfarm`` start, running or not, without touching its data.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import pwd
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

from polyfarm.errors import EmbeddedDatabaseError
from polyfarm.logs import get_logger

log = get_logger(__name__)

READER_ROLE = "polyfarm_reader"
SUPERUSER = "postgres"
IDENT_MAP = "polyfarm"
MANAGED = "# polyfarm: managed file, rewritten at every start; local edits are lost"
SCRAM_ITERATIONS = 4096


def hba_text() -> str:
    return (
        f"{MANAGED}\n"
        "# TYPE  DATABASE  USER  METHOD\n"
        f"local   all       {SUPERUSER}  peer map={IDENT_MAP}\n"
        "local   all       all       scram-sha-256\n"
    )


def ident_text(os_users: list[str]) -> str:
    lines = [f"{IDENT_MAP}  {user}  {SUPERUSER}" for user in dict.fromkeys(os_users)]
    return f"{MANAGED}\n# MAP  OS-USER  ROLE\n" + "\n".join(lines) + "\n"


def scram_verifier(password: str, salt: bytes, iterations: int = SCRAM_ITERATIONS) -> str:
    """The ``SCRAM-SHA-256`` verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    Handing the server this, not the password, keeps the password out of its log and its
    statement statistics.
    """
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


_CREATE_READER = f"""\
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER_ROLE}') THEN
    CREATE ROLE {READER_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
  END IF;
END $$;
"""  # noqa: S608 - constants only


def reader_role_sql(password: str) -> str:
    """Create ``polyfarm_reader`` as migration 0008 would (it grants the privileges), and give
    it ``password``. Fed to psql on stdin, so nothing shows in the process list."""
    verifier = scram_verifier(password, secrets.token_bytes(16))
    # The verifier is base64, digits, '$' and ':' only: it cannot close the quoted literal.
    return _CREATE_READER + f"ALTER ROLE {READER_ROLE} PASSWORD '{verifier}';\n"


def passfile_text(reader_password: str) -> str:
    return (
        "# polyfarm: generated password of the embedded PostgreSQL's read-only role; keep private\n"
        f"*:*:*:{READER_ROLE}:{reader_password}\n"
    )


def read_reader_password(passfile: Path) -> str | None:
    try:
        text = passfile.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) == 5 and fields[3] == READER_ROLE and fields[4]:
            return fields[4]
    return None


def write_private(path: Path, text: str, owner: tuple[int, int] | None = None) -> bool:
    """Write ``text`` to ``path`` as mode 0600 (and ``owner``), atomically; True if it changed.

    The file is created 0600 before a byte is written, so no reader ever sees it open.
    """
    try:
        unchanged = path.read_text() == text
    except (FileNotFoundError, UnicodeDecodeError):
        unchanged = False
    if not unchanged:
        temporary = path.with_name(f".{path.name}.new")
        temporary.unlink(missing_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if owner is not None:
            os.chown(temporary, *owner)
        os.replace(temporary, path)
    restrict(path, 0o600, owner)
    return not unchanged


def restrict(path: Path, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Set ``mode`` (and ``owner``) on ``path``, refusing to follow a symbolic link."""
    if path.is_symlink():
        raise PermissionError(f"{path} is a symbolic link; refusing to use it")
    if owner is not None:
        os.chown(path, *owner, follow_symlinks=False)
    path.chmod(mode)


# -- OS users and file modes ---------------------------------------------------------------


def ensure_service_user(name: str) -> tuple[int, int]:
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


def own_user_name() -> str:
    """Peer authentication maps OS user names, so the user running polyfarm needs one."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        raise EmbeddedDatabaseError(
            f"uid {os.geteuid()} has no user name (no passwd entry), which the embedded "
            "database's peer authentication needs: add one, or set POLYFARM_DATABASE_URL"
        ) from None


def refuse_foreign(path: Path, owner: tuple[int, int] | None) -> None:
    """The socket directory may sit in the shared temporary directory under a predictable
    name: one made by anybody else, or a link, is not ours to use."""
    found = path.lstat()
    allowed = {os.geteuid(), *([owner[0]] if owner else [])}
    if stat.S_ISLNK(found.st_mode) or found.st_uid not in allowed:
        raise EmbeddedDatabaseError(
            f"{path} belongs to another user (uid {found.st_uid}) or is a link: remove it, or "
            "choose a shorter POLYFARM_DATA_DIR so that the socket lives inside it"
        )


def chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.chown(os.path.join(root, name), uid, gid)


def ensure_traversable(path: Path) -> None:
    """Give 'others' execute (never read) on ``path`` and its ancestors where they lack it, so
    the service user can reach the binaries and its own directories; the data directory
    itself stays closed (group-only traversal, see ``_prepare_dirs``)."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
            log.info("made directory traversable for the database user", path=str(directory))
