"""Shared test helpers: run the CLI in-process, run torch on one thread, locate ../shared/data (skip
when absent)."""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SKIPTOOL_SHARED_DATA", REPO.parent / "shared" / "data"))


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(*args: str) -> CliResult:
    """Run `skiptool ARGS` in this process and capture exit code, stdout and stderr."""
    from skiptool.bin.main import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return CliResult(code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def one_thread():
    """torch on one thread for the test (`pytestmark = pytest.mark.usefixtures("one_thread")`):
    tiny models run fastest so, and a busy shared machine makes OpenMP spin-waits of such small
    ops very slow."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_user_error(result: CliResult, *needles: str) -> None:
    """A user error: non-zero exit, one line on stderr naming what is wrong, no traceback."""
    assert result.code != 0, f"expected failure, got exit 0; stderr={result.err!r}"
    assert "Traceback" not in result.err, result.err
    lines = [l for l in result.err.splitlines() if l.startswith("skiptool: error:")]
    assert len(lines) == 1, result.err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


@pytest.fixture
def fsdd_dir() -> Path:
    path = SHARED_DATA / "fsdd" / "recordings"
    if not path.is_dir():
        pytest.skip(f"FSDD not found at {path} (real-data tests need ../shared/data)")
    return path.parent


@pytest.fixture
def mnist_dir() -> Path:
    path = SHARED_DATA / "mnist"
    if not (path / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found at {path} (real-data tests need ../shared/data)")
    return path


def copy_recipe(name: str, dest: Path) -> Path:
    """Copy egs/<name> (and egs/utils) under `dest`, so a test run writes nothing into the repo."""
    import shutil

    shutil.copytree(REPO / "egs" / "utils", dest / "egs" / "utils")
    shutil.copytree(REPO / "egs" / name, dest / "egs" / name,
                    ignore=shutil.ignore_patterns("data", "dump", "exp"))
    return dest / "egs" / name


def run_recipe(recipe_dir: Path, *args: str, env: dict | None = None, timeout: int = 600):
    """Run `run.sh ARGS` with this repo's skiptool first on PATH; returns CompletedProcess."""
    import subprocess
    import sys

    full_env = {**os.environ, "SKIPTOOL_ROOT": str(REPO), "PYTHONUNBUFFERED": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                **(env or {})}
    return subprocess.run(["bash", str(recipe_dir / "run.sh"), *map(str, args)], env=full_env,
                          capture_output=True, text=True, timeout=timeout)
