"""Exit-status recorder: ``python _shim.py STATUS_FILE CMD...`` (stdlib only, started as a file).

Runs CMD as its child in the same process group, writes ``{"returncode": N}`` (Popen style:
negative = signal) to STATUS_FILE when it ends, then ends the same way. A watchdog that was
restarted and re-attached to a run it did not start reads the exit status from that file.
Signals sent to the group reach CMD directly; the shim only waits.
"""

import json
import os
import signal
import subprocess
import sys


def main() -> None:
    status_file, argv = sys.argv[1], sys.argv[2:]
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: None)  # handlers (not SIG_IGN) are reset in the child
    proc = subprocess.Popen(argv)
    while True:
        try:
            rc = proc.wait()
            break
        except InterruptedError:
            continue
    tmp = status_file + ".tmp"
    with open(tmp, "w") as fh:
        json.dump({"returncode": rc}, fh)
    os.replace(tmp, status_file)
    if rc < 0:
        if -rc not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(-rc, signal.SIG_DFL)
        os.kill(os.getpid(), -rc)
    sys.exit(rc)


if __name__ == "__main__":
    main()
