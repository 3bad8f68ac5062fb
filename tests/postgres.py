"""A real PostgreSQL server for the tests: ``initdb`` and ``pg_ctl`` in a temporary directory, on a free port.

Run as an unprivileged user: the current one, or (PostgreSQL refuses to run as root) the ``postgres`` user of
Debian's package, else ``nobody``. Password authentication over TCP, so that the tests see a URL with a password
(``postgresql://sora:<password>@127.0.0.1:<port>/<db>``) as a deployment would. ``.ci/run`` installs Debian's
``postgresql`` package when no ``initdb`` is found; elsewhere the tests that need it are skipped.
"""

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

USER = "sora"


def find_bindir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``: on ``PATH``, or Debian's ``/usr/lib/postgresql/<v>/bin``."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in ``directory``; :meth:`start`, :meth:`stop`, :meth:`database`."""

    def __init__(self, directory: Path, bindir: Path) -> None:
        self.directory = directory
        self.bindir = bindir
        self.data = directory / "data"
        self.sockets = directory / "sockets"
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self._run_as = _unprivileged_user()
        self._databases = 0

    def url(self, database: str = "postgres", *, port: int | None = None) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{port or self.port}/{database}"

    def init(self) -> None:
        for path in (self.directory, self.sockets):
            path.mkdir(parents=True, exist_ok=True)
        password_file = self.directory / "password"
        password_file.write_text(self.password + "\n")
        if self._run_as is not None:
            os.chown(self.directory, self._run_as.pw_uid, self._run_as.pw_gid)
            os.chown(self.sockets, self._run_as.pw_uid, self._run_as.pw_gid)
            os.chown(password_file, self._run_as.pw_uid, self._run_as.pw_gid)
        self._pg(
            "initdb", "-D", str(self.data), "-U", USER, "--auth=scram-sha-256", f"--pwfile={password_file}",
            "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        password_file.unlink()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.directory / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def sql(self, statement: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as connection:
            connection.execute(statement)

    def database(self) -> str:
        """A new, empty database; its URL."""
        self._databases += 1
        name = f"journal_{self._databases}_{secrets.token_hex(3)}"
        self.sql(f"CREATE DATABASE {name}")
        return self.url(name)

    def _pg(self, program: str, *arguments: str) -> None:
        command = [str(self.bindir / program), *arguments]
        if self._run_as is not None:
            command = ["setpriv", f"--reuid={self._run_as.pw_uid}", f"--regid={self._run_as.pw_gid}",
                       "--clear-groups", *command]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.directory, timeout=120)
        if result.returncode != 0:
            log = self.directory / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr or result.stdout}\n{tail}")


def _unprivileged_user() -> pwd.struct_passwd | None:
    """None when not root (run as ourselves); else the ``postgres`` user, or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and there is no postgres or nobody user to run PostgreSQL as")


@contextlib.contextmanager
def running_server(prefix: str = "sora-pg-") -> Iterator[PostgresServer]:
    """A started cluster in a new temporary directory (named ``prefix...``), stopped and removed at the end."""
    bindir = find_bindir()
    if bindir is None:
        raise FileNotFoundError("initdb not found: install PostgreSQL (Debian: apt-get install postgresql)")
    directory = Path(tempfile.mkdtemp(prefix=prefix))  # under /tmp: the server's user can reach it
    try:
        server = PostgresServer(directory, bindir)
        server.init()
        server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(RuntimeError):
                server.stop("immediate")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
