"""Exceptions raised by the client. Everything derives from :class:`RinggateError`."""

from __future__ import annotations


class RinggateError(Exception):
    """Base class of every error this package raises."""


class ConnectError(RinggateError):
    """The connection or the WebSocket handshake failed.

    ``status`` is the HTTP status when the server answered the upgrade with one, ``body`` its
    body (ringgate's error bodies are ``{"error": "..."}``).
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None,
                 body: str | None = None):
        super().__init__(message)
        self.url = url
        self.status = status
        self.body = body


class AuthenticationError(ConnectError):
    """The server refused the token (HTTP 401 or 403). Never retried."""


class RequestRejected(ConnectError):
    """ringgate refused the request itself (400 bad query value, 404 path, 426, ...).

    Never retried: the same request would be refused again.
    """


class NotRinggateError(ConnectError):
    """The peer is not a ringgate gateway: not WebSocket, not JSON, or no ``Hello`` frame."""


class SubscriptionError(RinggateError):
    """The server answered the subscription with an ``Error`` frame (``code``, ``message``).

    The client does not carry on with a subscription the server did not accept.
    """

    def __init__(self, code: str, message: str, raw: dict | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.raw = raw or {}


class ConnectionLost(RinggateError):
    """The connection dropped and ``reconnect=False`` (``code``/``reason`` of the close)."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = ""):
        super().__init__(message)
        self.code = code
        self.reason = reason


class ProtocolError(RinggateError):
    """A frame could not be understood (not JSON, wrong envelope)."""


class DecodeError(RinggateError):
    """Strict decoding found a documented field missing or of the wrong type."""
