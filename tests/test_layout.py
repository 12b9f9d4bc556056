"""The house by role: packages say what they are, modules stay small, imports are free."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import engine

REPO = Path(__file__).resolve().parent.parent
MAX_LINES = 400


def _modules() -> list[str]:
    found = ["engine", "models", "config"]
    for pkg in (engine,):
        found += [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
    return found


def test_every_engine_package_opens_with_a_docstring_saying_what_runs_there() -> None:
    for init in sorted((REPO / "engine").glob("*/__init__.py")):
        text = init.read_text()
        assert text.lstrip().startswith('"""'), f"{init} has no opening docstring"
        assert "import" in text, f"{init}: say what the package may import"


def test_no_module_is_over_400_lines() -> None:
    for top in ("engine", "models", "config"):
        for path in (REPO / top).rglob("*.py"):
            lines = len(path.read_text().splitlines())
            assert lines <= MAX_LINES, f"{path.relative_to(REPO)}: {lines} lines"


def test_importing_any_module_reads_no_settings_and_makes_nothing(tmp_path: Path) -> None:
    """With a broken setting and a fresh state dir, every module still imports, and the
    state dir stays empty: settings, catalog and clients are built at start, not import."""
    state = tmp_path / "state"
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    env = {
        **os.environ,
        "TAILOR_API_PORT": "not-a-port",
        "TAILOR_STATE_DIR": str(state),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, *_modules()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not state.exists(), f"importing made {sorted(state.rglob('*'))}"
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "importing wrote to the cwd"


@pytest.mark.parametrize("module", ["engine.worker", "engine.api", "engine.wire"])
def test_serving_processes_never_load_offline_evaluation(module: str) -> None:
    code = (
        f"import importlib, pkgutil, sys\nimport {module} as p\n"
        "for m in pkgutil.walk_packages(p.__path__, p.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'tqdm') or "
        "m.startswith(('engine.replay', 'engine.sim', 'engine.dev')))\n"
        "print(','.join(bad))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"{module} loads {done.stdout.strip()}"
