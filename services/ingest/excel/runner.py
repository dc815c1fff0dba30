"""`parse_workbook`: sniff in the parent, then parse in a capped child process.

Whatever the file does to the reader (abort, segfault, memory exhaustion, endless work), the
caller gets a `ParseOutcome`, never an exception: a hostile upload must fail as a 409/415 for
that file, not kill the ingest service or come back forever as a redelivered message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from services.ingest.excel.sniff import SniffResult, sniff
from services.ingest.excel.types import (
    OUTCOME_KINDS,
    CellError,
    OutcomeKind,
    ParseJob,
    ParseLimits,
    ParseOutcome,
)

PROJECT_ROOT: Final = Path(__file__).resolve().parents[3]
WORKER_MODULE: Final = "services.ingest.excel.worker"
RSS_POLL_SECONDS: Final = 0.2
STDERR_TAIL: Final = 2000
# Signals that mean "ran out of memory": Rust aborts on a failed allocation, the kernel's
# OOM killer sends SIGKILL.
_MEMORY_SIGNALS: Final = frozenset({signal.SIGABRT, signal.SIGKILL})


def _file_outcome(kind: OutcomeKind, message: str, **fields: Any) -> ParseOutcome:
    sheet = fields.pop("sheet", None)
    error = CellError(sheet=sheet or "", row=None, column=None, cell=None, value=None, code=kind, message=message)
    return ParseOutcome(kind=kind, total_errors=1, errors=(error,), sheet=sheet, **fields)


def _gib(n: int) -> str:
    return f"{n / 1024**3:g} GiB"


def _memory_message(limits: ParseLimits) -> str:
    return f"The file could not be read within the memory limit ({_gib(limits.memory_bytes)})."


def _read_vm_hwm(pid: int) -> int | None:
    """Peak resident set of a live process from /proc (bytes), None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


async def _watch_rss(pid: int, peak: list[int]) -> None:
    # The child reports its own peak when it finishes; this covers children that crash.
    while True:
        value = _read_vm_hwm(pid)
        if value is not None and value > peak[0]:
            peak[0] = value
        await asyncio.sleep(RSS_POLL_SECONDS)


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{PROJECT_ROOT}{os.pathsep}{path}" if path else str(PROJECT_ROOT)
    env["SALESWIRE_PARSE_PARENT_PID"] = str(os.getpid())
    return env


# --- what parse_workbook and stream.stream_workbook share: the sniff's refusals, the job handed to
# the worker, stopping it and the outcome fields of a finished or timed-out worker


def sniff_failed(exc: Exception, started: float) -> ParseOutcome:
    """A damaged container can break the zip reader in ways it does not document (zlib.error,
    NotImplementedError for exotic compression, ...): that is a bad file, never a crash."""
    return _file_outcome(
        "unreadable_file",
        "The file is damaged and could not be read as a spreadsheet.",
        elapsed_seconds=time.monotonic() - started,
        diagnostic=f"sniff failed: {exc!r}",
    )


def refused_by_sniff(found: SniffResult, started: float) -> ParseOutcome:
    """The outcome of a file the sniff refused (no `format`): no worker is started for it."""
    kind: OutcomeKind = found.kind if found.kind in OUTCOME_KINDS else "unsupported_format"  # type: ignore[assignment]
    return _file_outcome(
        kind,
        found.message or "The file is not a spreadsheet.",
        sheet=found.sheet,
        elapsed_seconds=time.monotonic() - started,
    )


def worker_job(job: ParseJob, limits: ParseLimits, file_format: str, *, stream: bool = False) -> bytes:
    """The job as the worker reads it from its stdin (`stream`: send the chunks through the pipe)."""
    fields: dict[str, Any] = {"path": str(job.path), "spool_path": str(job.spool_path)}
    if stream:
        fields["stream"] = True
    fields.update(
        {
            "format": file_format,
            "timezone": job.timezone,
            "currency": getattr(job, "currency", None),
            "max_errors": limits.max_listed_errors,
            "max_rows": limits.max_rows,
            "max_columns": limits.max_columns,
            "memory_bytes": limits.memory_bytes,
            "report_id": job.report_id,
            "source_report_id": job.source_report_id,
            "channel_id": job.channel_id,
            "creator_id": job.creator_id,
        }
    )
    if limits.segment_bytes is not None:
        fields["segment_bytes"] = limits.segment_bytes
    return json.dumps(fields).encode()


async def start_worker(
    extra_env: Mapping[str, str] | None = None, pass_fds: tuple[int, ...] = ()
) -> asyncio.subprocess.Process:
    """A parse worker process, waiting for its job on stdin."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        WORKER_MODULE,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(PROJECT_ROOT),
        env=_worker_env() | dict(extra_env or {}),
        pass_fds=pass_fds,
    )


async def stop_worker(proc: asyncio.subprocess.Process) -> None:
    """Timeout, or our caller was cancelled: the child must not outlive the request."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await asyncio.shield(proc.wait())


def finished_fields(found: SniffResult, started: float, peak: int) -> dict[str, Any]:
    """The fields every outcome of a worker that ran carries."""
    return {
        "format": found.format,
        "elapsed_seconds": time.monotonic() - started,
        "peak_rss_bytes": peak or None,
        "sheet": found.sheet,
    }


def timed_out(limits: ParseLimits, common: dict[str, Any]) -> ParseOutcome:
    return _file_outcome(
        "parse_timeout",
        f"The file could not be read within the time limit ({limits.timeout_seconds:g} s).",
        diagnostic="killed after timeout",
        **common,
    )


async def parse_workbook(job: ParseJob, limits: ParseLimits) -> ParseOutcome:
    """Sniff, parse and validate one workbook; valid rows land in `job.spool_path`.

    On any outcome but "ok" the spool file is removed, so that no partial data can be inserted.
    """
    started = time.monotonic()
    outcome = await _parse(job, limits, started)
    if not outcome.ok:
        with contextlib.suppress(OSError):
            job.spool_path.unlink(missing_ok=True)
    return outcome


async def _parse(job: ParseJob, limits: ParseLimits, started: float) -> ParseOutcome:
    try:
        found = await asyncio.to_thread(sniff, job.path, limits)
    except Exception as exc:
        return sniff_failed(exc, started)
    if found.format is None:
        return refused_by_sniff(found, started)
    payload = worker_job(job, limits, found.format)
    proc = await start_worker()
    peak = [0]
    watcher = asyncio.create_task(_watch_rss(proc.pid, peak))
    out_of_time = False
    stdout = stderr = b""
    try:
        try:
            stdout, stderr = await asyncio.wait_for(proc.communicate(payload), timeout=limits.timeout_seconds)
        except TimeoutError:
            out_of_time = True
    finally:
        watcher.cancel()
        await stop_worker(proc)
    common = finished_fields(found, started, peak[0])
    if out_of_time:
        return timed_out(limits, common)
    return _interpret(proc.returncode, stdout, stderr, limits, common)


def _interpret(
    returncode: int | None,
    stdout: bytes,
    stderr: bytes,
    limits: ParseLimits,
    common: dict[str, Any],
) -> ParseOutcome:
    tail = stderr.decode("utf-8", "replace")[-STDERR_TAIL:] or None
    answer = _last_json_line(stdout)
    if answer is None:
        if returncode is not None and returncode < 0:
            sig = -returncode
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            message = (
                _memory_message(limits)
                if sig in _MEMORY_SIGNALS
                else "The file could not be read: the spreadsheet reader crashed on it."
            )
            return _file_outcome("unreadable_file", message, diagnostic=f"worker killed by {name}: {tail}", **common)
        return _file_outcome(
            "unreadable_file",
            "The file could not be read: the spreadsheet reader failed on it.",
            diagnostic=f"worker exit {returncode} without an answer: {tail}",
            **common,
        )
    peak = answer.get("peak_rss_bytes")
    if isinstance(peak, int) and peak > (common["peak_rss_bytes"] or 0):
        common["peak_rss_bytes"] = peak
    if answer.get("sheet"):
        common["sheet"] = str(answer["sheet"])
    if answer.get("ok") is True:
        return ParseOutcome(kind="ok", rows=int(answer.get("rows", 0)), diagnostic=tail, **common)
    kind = answer.get("kind")
    if kind == "out_of_memory":
        return _file_outcome("unreadable_file", _memory_message(limits), diagnostic="MemoryError", **common)
    try:
        errors = tuple(CellError.from_dict(item) for item in answer.get("errors") or ())
        total = int(answer.get("total_errors") or len(errors))
    except (KeyError, TypeError, ValueError):
        return _file_outcome(
            "unreadable_file", "The file could not be read.", diagnostic=f"bad worker answer: {answer!r}", **common
        )
    if kind not in OUTCOME_KINDS or kind == "ok" or not errors:
        return _file_outcome(
            "unreadable_file", "The file could not be read.", diagnostic=f"bad worker answer: {answer!r}", **common
        )
    return ParseOutcome(
        kind=kind,
        total_errors=max(total, len(errors)),
        errors=errors,
        diagnostic=tail,
        **common,
    )


def _last_json_line(stdout: bytes) -> dict[str, Any] | None:
    for line in reversed(stdout.decode("utf-8", "replace").splitlines()):
        line = line.strip()
        if not line:
            continue
        try:
            value = json.loads(line)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
    return None
