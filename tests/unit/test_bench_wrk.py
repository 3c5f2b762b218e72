"""The wrk driver of the HTTP benchmark (bench/wrk.py): its figures read from captured wrk 4.1.0
output, and the Lua scripts and argv it builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import wrk

# wrk 4.1.0 (Debian), 2 threads, 4 connections, 1 s, a create body with a counter, bare endpoint
OK = """\
Running 1s test @ http://127.0.0.1:42131
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.37ms    1.78ms  16.64ms   92.23%
    Req/Sec     1.97k   522.77     2.99k    75.00%
  Latency Distribution
     50%    0.87ms
     75%    1.18ms
     90%    2.31ms
     99%   10.72ms
  3916 requests in 1.00s, 823.87KB read
Requests/sec:   3899.46
Transfer/sec:    820.39KB
TW_WRK {"requests":3916,"duration_us":1004241,"bytes":843645,"connect":0,"read":0,"write":0,\
"status":0,"timeout":0,"p50_us":869,"p90_us":2312,"p95_us":4643,"p99_us":10723,"max_us":16636,\
"mean_us":1370.8}
"""

# the same against a route answering 405 to every request
REFUSED = """\
Running 1s test @ http://127.0.0.1:37559
  2 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.45ms    2.36ms  17.71ms   89.82%
    Req/Sec     1.42k   804.23     3.37k    80.00%
  Latency Distribution
     50%  516.00us
     75%    1.37ms
     90%    3.83ms
     99%   12.31ms
  2851 requests in 1.02s, 518.02KB read
  Non-2xx or 3xx responses: 2851
Requests/sec:   2802.52
Transfer/sec:    509.21KB
TW_WRK {"requests":2851,"duration_us":1017299,"bytes":530454,"connect":0,"read":0,"write":0,\
"status":2851,"timeout":0,"p50_us":516,"p90_us":3826,"p95_us":6393,"p99_us":12311,"max_us":17708,\
"mean_us":1449.7}
"""


def test_figures_of_a_run() -> None:
    figures = wrk.parse(OK)
    assert figures.requests == 3916
    assert figures.seconds == pytest.approx(1.004241)
    assert figures.errors == 0
    assert (figures.p50_ms, figures.p95_ms, figures.p99_ms) == (0.869, 4.643, 10.723)
    assert figures.max_ms == 16.636
    assert figures.rate == pytest.approx(wrk.reported_rate(OK), rel=1e-3)


def test_non_2xx_responses_are_errors() -> None:
    figures = wrk.parse(REFUSED)
    assert figures.errors == 2851
    assert figures.requests == 2851


def test_every_kind_of_error_counts() -> None:
    line = _summary(OK)
    for kind in ("connect", "read", "write", "status", "timeout"):
        assert wrk.parse(line.replace(f'"{kind}":0', f'"{kind}":3')).errors == 3


def test_output_without_the_summary_line_is_refused() -> None:
    # what wrk prints when the script fails: a Lua panic on stderr, nothing on stdout
    with pytest.raises(ValueError, match="no TW_WRK line"):
        wrk.parse("")
    with pytest.raises(ValueError, match="no TW_WRK line"):
        wrk.parse(OK.replace("TW_WRK", "XX_WRK"))


@pytest.mark.parametrize(
    "line",
    [
        "TW_WRK {not json",
        'TW_WRK {"requests":1}',
        'TW_WRK {"requests":"many","duration_us":1,"connect":0,"read":0,"write":0,"status":0,'
        '"timeout":0,"p50_us":1,"p95_us":1,"p99_us":1,"max_us":1}',
        "TW_WRK []",
    ],
)
def test_a_malformed_summary_line_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        wrk.parse(line)


def test_a_run_of_no_time_has_no_rate() -> None:
    figures = wrk.parse(_summary(OK).replace('"duration_us":1004241', '"duration_us":0'))
    assert figures.rate == 0.0


def test_reported_rate_is_none_without_the_line() -> None:
    assert wrk.reported_rate("nothing") is None


def test_script_with_headers_body_and_counter() -> None:
    text = wrk.script(
        "POST", "/api/tasks/", {"Authorization": "Bearer a.b"}, '{"title":"t @N@"}', "@N@"
    )
    assert 'local method = "POST"' in text
    assert 'headers["Authorization"] = "Bearer a.b"' in text
    assert 'local body = "{\\"title\\":\\"t @N@\\"}"' in text
    assert 'local mark = "@N@"' in text
    assert "string.gsub(body, mark" in text
    assert "done = function(summary, latency, requests)" in text


def test_script_without_counter_sends_one_fixed_request() -> None:
    text = wrk.script("GET", "/api/tasks/1?search=login")
    assert 'local path = "/api/tasks/1?search=login"' in text
    assert "fixed = wrk.format(method, path, headers, body)" in text
    assert "gsub" not in text


@pytest.mark.parametrize(
    ("args", "issue"),
    [
        (("GET", "/api/tasks/é"), "ASCII"),
        (("GET", "/", {"X": "é"}), "ASCII"),
        (("POST", "/", None, "n %", "%"), "counter"),
        (("POST", "/", None, "n", "a.b"), "counter"),
        (("POST", "/", None, "n", ""), "counter"),
    ],
)
def test_script_refuses_what_lua_would_misread(args: tuple, issue: str) -> None:
    with pytest.raises(ValueError, match=issue):
        wrk.script(*args)


def test_command_clamps_threads_and_rounds_seconds_up(tmp_path: Path) -> None:
    path = wrk.write_script(tmp_path, "get", "-- lua")
    assert path.read_text() == "-- lua"
    argv = wrk.command("wrk", "http://127.0.0.1:1", path, 1, 0.2)
    assert argv[:4] == ["wrk", "-t1", "-c1", "-d1s"]
    assert argv[-3:] == ["-s", str(path), "http://127.0.0.1:1"]
    assert "--latency" in argv
    assert wrk.command("wrk", "u", path, 64, 8)[1:4] == ["-t2", "-c64", "-d8s"]
    assert wrk.command("wrk", "u", path, 16, 2.5)[3] == "-d3s"


def _summary(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("TW_WRK"))
