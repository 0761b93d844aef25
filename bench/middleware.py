"""Per-request figures for the benchmarks, in Server-Timing:

- `cpu`: the worker thread's CPU time for the whole request (a figure that a
  busy machine disturbs far less than wall time);
- `sql` (only when the request asks with `X-Bench-Round-Trips: 1`): the round
  trips this request made to PostgreSQL, counted from libpq's own protocol
  trace (every Query or Sync message the client sent: BEGIN, COMMIT and
  Django's connection health check included). Tracing costs CPU, so the
  bench asks for it on a few requests of their own only.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable

from django.db import connection
from django.http import HttpRequest, HttpResponse


def _round_trips(trace: str) -> int:
    # libpq writes one line per protocol message, "F" for the client's.
    count = 0
    for line in trace.splitlines():
        parts = line.split("\t")
        if len(parts) > 2 and parts[0] == "F" and parts[2].split(" ")[0] in ("Query", "Sync"):
            count += 1
    return count


class BenchFiguresMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        traced = request.headers.get("X-Bench-Round-Trips") == "1" and connection.vendor == (
            "postgresql"
        )
        if traced:
            return self._traced(request)
        started = time.thread_time()
        response = self.get_response(request)
        self._timing(response, f"cpu;dur={(time.thread_time() - started) * 1000:.3f}")
        return response

    def _traced(self, request: HttpRequest) -> HttpResponse:
        from psycopg import pq

        connection.ensure_connection()
        pgconn = connection.connection.pgconn
        with tempfile.TemporaryFile("w+") as trace:
            pgconn.trace(trace.fileno())
            pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
            try:
                response = self.get_response(request)
            finally:
                pgconn.untrace()
            trace.seek(0)
            self._timing(response, f"sql;desc={_round_trips(trace.read())}")
        return response

    @staticmethod
    def _timing(response: HttpResponse, figure: str) -> None:
        timing = response.get("Server-Timing")
        response["Server-Timing"] = f"{timing}, {figure}" if timing else figure
