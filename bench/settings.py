"""The product's settings plus what only the benchmarks serve: the bare
ledger transfer (bench/views.py) and the per-request CPU and round-trip
figures (bench/middleware.py). Never a product setting: gunicorn loads this
module only when a benchmark starts it (DJANGO_SETTINGS_MODULE=bench.settings)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
MIDDLEWARE = ["bench.middleware.BenchFiguresMiddleware", *MIDDLEWARE]  # noqa: F405
