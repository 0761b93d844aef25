import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_runs_the_full_stack():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "minio"} <= set(services)
    assert "gunicorn" in services["web"]["command"]
    assert "worker" in services["worker"]["command"]
    assert "beat" in services["beat"]["command"]


def test_compose_holds_no_secret_values():
    text = (ROOT / "compose.yaml").read_text()
    for name in (
        "DJANGO_SECRET_KEY",
        "FIELD_ENCRYPTION_KEY",
        "POSTGRES_PASSWORD",
        "MINIO_ROOT_PASSWORD",
    ):
        for line in text.splitlines():
            if line.strip().startswith(f"{name}:"):
                assert "${" in line, line


@pytest.mark.skipif(
    shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed"
)
def test_docker_compose_validates_the_file():
    result = subprocess.run(
        ["docker-compose", "config", "-q"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
