"""gunicorn's settings wherever the project is served by it (the Dockerfile,
compose.yaml, bench/): gunicorn reads ./gunicorn.conf.py by itself. The
command lines say how many workers and where to bind; this file says what
every worker does."""

from __future__ import annotations

import gc
from typing import Any


def post_worker_init(worker: Any) -> None:
    """Once the worker has loaded Django: load the URLconf (every view and
    serializer module) now rather than on the first request, then freeze
    the collector's view of everything loaded so far.

    Those objects live as long as the worker, yet each full collection
    walks them all: hundreds of thousands in a Django process, so a full
    collection takes tens of milliseconds, and its share lands on whatever
    requests allocate most (a signed terminal request, measured with
    bench/signing.py). Frozen (gc.freeze, as Python's documentation advises
    for a preforked server), they are never scanned again; what requests
    create is collected as before."""
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    gc.freeze()
