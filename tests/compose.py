"""A Compose implementation for the tests, to read docker-compose.yml as Docker would, with no
Docker engine: `docker compose config` and `docker-compose config` only parse, interpolate and
validate the file.

The machine's own `docker compose` (v2) or `docker-compose` when it has one; otherwise
docker-compose 1.29.2 (the Python implementation, as Debian packages it) installed from the
package index into `.local/compose-venv`, once. Its dependencies conflict with the project's lock
(PyYAML 5), hence a venv of its own; PyYAML 5.4.1 builds only with Cython below 3, so that is
installed first and PyYAML built without build isolation. Pinned in tests/compose-requirements.txt.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from lib.config import ROOT

VENV = ROOT / ".local" / "compose-venv"
REQUIREMENTS = Path(__file__).with_name("compose-requirements.txt")


def _works(command: list[str]) -> bool:
    try:
        return subprocess.run([*command, "version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _install() -> list[str]:
    tool = VENV / "bin" / "docker-compose"
    if tool.exists() and _works([str(tool)]):
        return [str(tool)]
    shutil.rmtree(VENV, ignore_errors=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    pins = dict(line.split("==") for line in REQUIREMENTS.read_text().splitlines()
                if line and not line.startswith("#"))
    for step in ([sys.executable, "-m", "venv", str(VENV)],
                 [*pip, f"cython=={pins['cython']}", "wheel", "setuptools"],
                 [*pip, "--no-build-isolation", f"pyyaml=={pins['pyyaml']}"],
                 [*pip, "-r", str(REQUIREMENTS)]):
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"installing docker-compose into {VENV} failed: {' '.join(step)}\n"
                               f"{done.stdout}{done.stderr}")
    return [str(tool)]


def command() -> list[str]:
    """How to run a Compose implementation here."""
    for candidate in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(candidate[0]) and _works(candidate):
            return candidate
    return _install()


def config(env: dict[str, str] | None = None, file: Path = ROOT / "docker-compose.yml") -> str:
    """`config` of the file: the model Compose runs, interpolated from `env` alone (not from this
    process's environment, nor from a .env file)."""
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    answer = subprocess.run([*command(), "--project-directory", str(file.parent), "-f", str(file),
                             "config"], capture_output=True, text=True, env={**clean, **(env or {})},
                            timeout=120)
    if answer.returncode != 0:
        raise AssertionError(f"compose config failed: {answer.stderr.strip()}")
    return answer.stdout
