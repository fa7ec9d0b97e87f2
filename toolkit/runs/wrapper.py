"""Run one shell command and write its exit code next to its log when it ends.

    python wrapper.py EXIT_FILE COMMAND

The local launcher starts this as the leader of a new session (process group), so the exit code
is recorded even though the launcher itself exits at once. The file is JSON
``{"exit_code": N, "ended": ISO}`` written atomically (temp file + rename); N follows Popen
(``-SIG`` when the command died of a signal). SIGTERM/SIGINT/SIGHUP sent to this wrapper alone
are passed on to the command. Kept free of toolkit imports so it starts fast.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone


def main() -> int:
    exit_file, command = sys.argv[1], sys.argv[2]
    children: list[subprocess.Popen] = []

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            try:
                child.send_signal(signum)
            except OSError:
                pass

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    children.append(subprocess.Popen(["/bin/sh", "-c", command]))
    code = children[0].wait()
    ended = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    tmp = f"{exit_file}.tmp.{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump({"exit_code": code, "ended": ended}, fh)
    os.replace(tmp, exit_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
