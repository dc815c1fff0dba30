"""Stand-in for the worker process in runner tests: misbehaves as the job's report_id says."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def main() -> None:
    job = json.loads(sys.stdin.read())
    mode = job["report_id"]
    Path(job["spool_path"]).with_suffix(".pid").write_text(str(os.getpid()))
    if mode == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif mode == "garbage":
        print("this is not json")
    elif mode == "wrong-shape":
        print(json.dumps({"ok": False, "kind": "invalid", "errors": [{"no": "code"}]}))
    elif mode == "exit":
        sys.exit(3)
    elif mode == "memory":
        print(json.dumps({"ok": False, "kind": "out_of_memory", "errors": [], "total_errors": 1}))
    elif mode == "sleep":
        time.sleep(60)


if __name__ == "__main__":
    main()
