"""What a benchmark ran on: one description for every benchmark's results."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def describe(watched: str, packages: dict[str, str]) -> dict[str, Any]:
    """Python, platform, CPU, cores, memory, load, package versions, and the git commit
    (marked when `watched`, the folder the benchmark measures, has uncommitted changes)."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    try:
        memory_gib: float | None = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        memory_gib = None
    git = ["git", "-C", str(ROOT)]
    try:
        commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run([*git, "status", "--porcelain", watched], capture_output=True, text=True).stdout
    except OSError:
        commit, dirty = "", ""
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()} ({platform.python_compiler()})",
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "packages": packages,
        "git": f"{commit}{f' + uncommitted changes in {watched}/' if dirty else ''}" if commit else None,
    }


def header(info: dict[str, Any]) -> str:
    """The three lines a benchmark prints first: Python, machine, packages and commit."""
    load = f", load {info['load_average'][0]:.2f}" if info["load_average"] else ""
    packages = ", ".join(f"{name} {version}" for name, version in info["packages"].items())
    return "\n".join(
        [
            f"python   {info['python']} on {info['platform']}",
            f"machine  {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB{load}",
            f"packages {packages}; git {info['git']}",
        ]
    )


def best_of(repeats: int, work: Callable[[], object]) -> tuple[float, list[float]]:
    """The fastest of `repeats` runs (and all of them), with a full collection before each."""
    runs = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        work()
        runs.append(time.perf_counter() - started)
    gc.collect()
    return min(runs), runs
