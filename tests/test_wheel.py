"""What a user installs: the sdist and the wheel built from it (as `python -m build` and pip do)
carry the notebooks, and chatcap installed from the wheel, not from a checkout, finds them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {path.name: path.read_bytes() for path in sorted((ROOT / "notebooks").glob("*.ipynb"))}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(sdist, wheel) built from a copy of the checkout, so no build/ or egg-info lands in it."""
    tmp = tmp_path_factory.mktemp("build")
    source = tmp / "source"
    source.mkdir()
    for name in ["pyproject.toml", "setup.py", "MANIFEST.in", "README.md"]:
        shutil.copy(ROOT / name, source)
    leave_out = shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info", ".ipynb_checkpoints")
    for folder in ["analyzer", "notebooks"]:
        shutil.copytree(ROOT / folder, source / folder, ignore=leave_out)
    dist = tmp / "dist"
    # The build backend's own entry point, as `python -m build --sdist` calls it.
    sdist = subprocess.run(
        [sys.executable, "-c", f"from setuptools import build_meta; print(build_meta.build_sdist({str(dist)!r}))"],
        cwd=source, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert sdist.returncode == 0, sdist.stderr[-3000:]
    (tarball,) = dist.glob("chatcap-*.tar.gz")
    wheel = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", str(tarball), "-w", str(dist)],
        cwd=tmp, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert wheel.returncode == 0, wheel.stdout[-3000:] + wheel.stderr[-3000:]
    (built_wheel,) = dist.glob("chatcap-*.whl")
    return tarball, built_wheel


def test_sdist_carries_the_four_notebooks_byte_identical(built: tuple[Path, Path]) -> None:
    tarball, _ = built
    with tarfile.open(tarball) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        found = {Path(name).name: name for name in sdist.getnames() if name.startswith(f"{top}/notebooks/")}
        assert sorted(found) == sorted(NOTEBOOKS)
        assert all(sdist.extractfile(found[name]).read() == NOTEBOOKS[name] for name in NOTEBOOKS)


def test_wheel_built_from_the_sdist_holds_the_four_notebooks_byte_identical(built: tuple[Path, Path]) -> None:
    _, wheel = built
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        shipped = sorted(name for name in names if name.startswith("analyzer/notebooks/"))
        assert shipped == [f"analyzer/notebooks/{name}" for name in NOTEBOOKS]
        assert all(archive.read(f"analyzer/notebooks/{name}") == NOTEBOOKS[name] for name in NOTEBOOKS)
        record = archive.read(next(name for name in names if name.endswith(".dist-info/RECORD"))).decode()
    assert all(f"analyzer/notebooks/{name}," in record for name in NOTEBOOKS)
    assert not [name for name in names if name.startswith("notebooks/")]  # no top-level package of that name


def test_chatcap_installed_from_the_wheel_copies_its_packaged_notebooks(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    _, wheel = built
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]
    # This interpreter's dependencies, with the wheel's analyzer ahead of the checkout's editable one.
    script = (
        "import sys, analyzer.lab as lab; "
        "print(lab.__file__); print(lab.shipped()); "
        "print('\\n'.join(lab.prepare(sys.argv[1], sys.argv[2]).report()))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "lab"), str(tmp_path / "captures")],
        cwd=tmp_path, env=os.environ | {"PYTHONPATH": str(site)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    module, notebooks, copied, *_ = run.stdout.splitlines()
    assert module == str(site / "analyzer" / "lab.py")
    assert notebooks == str(site / "analyzer" / "notebooks")
    assert copied == f"copied {', '.join(NOTEBOOKS)} into {tmp_path / 'lab'}"
    assert sorted(path.name for path in (tmp_path / "lab").glob("*.ipynb")) == sorted(NOTEBOOKS)
