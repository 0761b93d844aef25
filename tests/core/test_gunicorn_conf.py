"""gunicorn.conf.py: what every gunicorn worker does once it has loaded
Django (gunicorn reads the file from the directory it starts in)."""

from __future__ import annotations

import gc
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gunicorn_conf():
    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    gc.unfreeze()


def test_a_worker_freezes_what_it_loaded_so_collections_skip_it(gunicorn_conf):
    from django.urls import get_resolver

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    gunicorn_conf.post_worker_init(worker=None)
    assert "url_patterns" in vars(get_resolver())  # the URLconf is loaded
    # Django, DRF, the URLconf: far more than a request ever creates.
    assert gc.get_freeze_count() > 100_000
    # What is made afterwards is collected as before.
    garbage = []
    garbage.append(garbage)
    del garbage
    assert gc.collect() >= 1
