"""The resume position: ``Cursor(epoch, seqno)``, serialized as ``"EPOCH:SEQNO"``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=False)
class Cursor:
    """A position in one server run.

    ``epoch`` is the server's ``Hello.epoch`` (its start time in microseconds; compare for
    equality only) and ``seqno`` the last ``server_seqno`` handed to the user. Seqnos of
    different epochs are unrelated.
    """

    epoch: int
    seqno: int

    def __post_init__(self) -> None:
        for name in ("epoch", "seqno"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"Cursor.{name} must be a non-negative int, got {v!r}")

    def __str__(self) -> str:
        return f"{self.epoch}:{self.seqno}"

    @classmethod
    def parse(cls, text: "str | Cursor") -> "Cursor":
        """Parse ``"EPOCH:SEQNO"`` (surrounding whitespace ignored); a Cursor is returned as is."""
        if isinstance(text, Cursor):
            return text
        if not isinstance(text, str):
            raise TypeError(f"expected a cursor string 'EPOCH:SEQNO', got {type(text).__name__}")
        parts = text.strip().split(":")
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError(f"invalid cursor {text!r}: expected 'EPOCH:SEQNO' (two decimal integers)")
        return cls(int(parts[0]), int(parts[1]))
