"""Driving wrk (the HTTP load generator, Debian package ``wrk``): a Lua script per request shape
and the figures read back from its output.

wrk sends a fixed GET unless a Lua script says otherwise, so every request shape gets a script:
method, path, headers and body, a body with a counter in it where each request must differ (a new
task's title), and a ``done`` hook that prints one line ``TW_WRK {json}`` with the counts, the
errors and the latency percentiles in microseconds (wrk's own ``--latency`` table has no p95).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

MARKER = "TW_WRK "
_LUA_MAGIC = "^$()%.[]*+-?"

_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f}\\n',
    "MARKER", summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
""".replace("MARKER", MARKER)


@dataclass(frozen=True)
class WrkFigures:
    """One wrk run: requests completed, their rate, errors and latency percentiles (ms)."""

    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def installed() -> str | None:
    """The path of the wrk binary, or None."""
    return shutil.which("wrk")


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for ASCII


def script(
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: str = "",
    counter: str | None = None,
) -> str:
    """A Lua script sending ``method path`` with ``headers`` and ``body``.

    With ``counter``, each request's body is ``body`` with every ``counter`` replaced by a number
    counting that thread's requests (wrk runs one Lua state per thread, so a thread number is put
    in front of it: bodies differ across threads too).
    """
    for text in (method, path, body, counter or "", *(headers or {}), *(headers or {}).values()):
        if not text.isascii():
            raise ValueError(f"wrk scripts here take ASCII only: {text!r}")
    if counter is not None and (not counter or any(c in _LUA_MAGIC for c in counter)):
        raise ValueError(f"the counter mark must be non-empty, without {_LUA_MAGIC}: {counter!r}")
    lines = [
        f"local method = {_lua_string(method)}",
        f"local path = {_lua_string(path)}",
        "local headers = {}",
        *(f"headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in (headers or {}).items()),
        f"local body = {_lua_string(body)}",
        "local threads = 0",
        "setup = function(thread) threads = threads + 1; thread:set('tid', threads) end",
        "local n = 0",
    ]
    if counter is None:
        lines.append("local fixed = nil")
        lines.append(
            "request = function()\n"
            "  if fixed == nil then fixed = wrk.format(method, path, headers, body) end\n"
            "  return fixed\nend"
        )
    else:
        lines.append(f"local mark = {_lua_string(counter)}")
        lines.append(
            "request = function()\n"
            "  n = n + 1\n"
            "  local id = tostring(tid or 0) .. '-' .. tostring(n)\n"
            "  local text = string.gsub(body, mark, function() return id end)\n"
            "  return wrk.format(method, path, headers, text)\nend"
        )
    return "\n".join(lines) + "\n" + _DONE


def write_script(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.lua"
    path.write_text(text)
    return path


def command(
    binary: str, url: str, script_path: Path, connections: int, seconds: float, threads: int = 2
) -> list[str]:
    """wrk's argv: ``threads`` threads (at most the connections), ``seconds`` rounded up to whole
    seconds (wrk's unit), the latency table printed, a 30 s timeout per request."""
    return [
        binary,
        f"-t{max(1, min(threads, connections))}",
        f"-c{connections}",
        f"-d{max(1, round(seconds + 0.49))}s",
        "--timeout",
        "30s",
        "--latency",
        "-s",
        str(script_path),
        url,
    ]


_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)


def parse(output: str) -> WrkFigures:
    """The figures of one run from wrk's standard output (the ``done`` hook's line).

    Raises ValueError when the line is missing or malformed (wrk failed to start, a Lua error).
    """
    for line in output.splitlines():
        if line.startswith(MARKER):
            try:
                data = json.loads(line[len(MARKER) :])
                errors = sum(
                    int(data[k]) for k in ("connect", "read", "write", "status", "timeout")
                )
                return WrkFigures(
                    requests=int(data["requests"]),
                    seconds=int(data["duration_us"]) / 1e6,
                    errors=errors,
                    p50_ms=int(data["p50_us"]) / 1000,
                    p95_ms=int(data["p95_us"]) / 1000,
                    p99_ms=int(data["p99_us"]) / 1000,
                    max_ms=int(data["max_us"]) / 1000,
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"malformed wrk summary line: {line!r}") from exc
    raise ValueError(f"no {MARKER.strip()} line in wrk's output:\n{output[-2000:]}")


def reported_rate(output: str) -> float | None:
    """wrk's own ``Requests/sec`` figure (a cross-check of :func:`parse`'s rate), or None."""
    match = _RATE.search(output)
    return float(match.group(1)) if match else None
