"""The embedded server is shared by processes and stops with the last handle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from deskpilot.core.embedded import EmbeddedPostgres

HOLDER = """
import sys
from pathlib import Path
from deskpilot.core.embedded import EmbeddedPostgres
server = EmbeddedPostgres(Path(sys.argv[1]))
server.start()
print("ready", flush=True)
sys.stdin.readline()
server.stop()
print("released", flush=True)
"""


def test_reopening_in_one_process_keeps_the_server_for_it(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    ours = EmbeddedPostgres(pgdata)
    with subprocess.Popen(  # noqa: S603  (our own interpreter and script)
        [sys.executable, "-c", HOLDER, str(pgdata)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        _exercise(holder, ours, pgdata)
    assert not (pgdata / "postmaster.pid").exists(), "not stopped with the last handle"


def _exercise(holder: subprocess.Popen[str], ours: EmbeddedPostgres, pgdata: Path) -> None:
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "ready"
        ours.start()
        ours.stop()  # this process held the server once and let go ...
        ours.start()  # ... and holds it again
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        assert holder.wait(timeout=60) == 0
        assert (pgdata / "postmaster.pid").exists(), "stopped while this process held it"
    finally:
        if holder.poll() is None:
            holder.kill()
        ours.stop()
