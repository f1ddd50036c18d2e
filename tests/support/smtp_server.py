"""A real SMTP server in the test process (aiosmtpd) on 127.0.0.1, keeping what it receives.

``with SmtpServer() as smtp:`` listens on a free port; ``smtp.messages`` are the received emails
parsed with the modern ``email`` policy, ``smtp.stop()``/``smtp.start()`` take it down and bring
it back on the same port (to test an outage).
"""

from __future__ import annotations

import socket
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


class _Keep:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    def __init__(self) -> None:
        self.port = _free_port()
        self.handler = _Keep()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def __enter__(self) -> SmtpServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def messages(self) -> list[EmailMessage]:
        return [
            message_from_bytes(raw, policy=policy.default)  # type: ignore[misc]
            for _, raw in self.handler.received
        ]

    def env(self) -> dict[str, str]:
        """``VEILLE_SMTP_*`` for a sender that must reach this server."""
        return {
            "VEILLE_SMTP_HOST": "127.0.0.1",
            "VEILLE_SMTP_PORT": str(self.port),
            "VEILLE_SMTP_FROM": "Veille <veille@example.org>",
            "VEILLE_SMTP_TIMEOUT": "5",
        }
