"""Commands run as a user runs them in a terminal, for the tests of what they draw there."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
from pathlib import Path


def in_a_terminal(args: list[str], cwd: Path) -> tuple[int, str]:
    """`args` run with a terminal (a pseudo-terminal of 40 rows and 120 columns) for stdout and
    stderr: its exit status and everything it drew there."""
    main, sub = pty.openpty()
    # A new pseudo-terminal is 0 × 0, and a progress bar sized to it draws nothing.
    fcntl.ioctl(sub, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=sub, stderr=sub,
                               env={**os.environ, "COLUMNS": "120", "TERM": "xterm"})  # fmt: skip
    os.close(sub)
    drawn = b""
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not data:
            break
        drawn += data
    os.close(main)
    return process.wait(timeout=120), drawn.decode("utf-8", "replace")
