"""Errors a user sees: one readable line naming the file and what is wrong."""

from __future__ import annotations


class LoadError(Exception):
    """An input could not be read as any supported capture format."""

    def __init__(self, source: str, reason: str, position: str = "") -> None:
        self.source = source
        self.reason = reason
        self.position = position
        where = f"{source} {position}".strip()
        super().__init__(f"{where}: {reason}")

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        # Raised in a worker process, it reaches the parent whole (pickled by its fields).
        return type(self), (self.source, self.reason, self.position)


class NoExchangesFound(LoadError):
    """The input is readable but holds no request/response exchange."""
