"""The refusal of an HTTP request to ``harness serve``: a status, a one-line message and its field."""

from __future__ import annotations

from typing import Any


class HTTPError(Exception):
    """A refused request: ``status``, a one-line message and the field it is about (``param``)."""

    def __init__(
        self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param

    def body(self) -> dict[str, Any]:
        return {
            "error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.status}
        }
