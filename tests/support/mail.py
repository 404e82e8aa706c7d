"""An SMTP server on loopback that keeps every mail it is given: Alertmanager's ticket receiver
sends to it in tests. Plain SMTP only (no STARTTLS, no AUTH), which is all a test config asks for."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default


class MailSink:
    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        mails, lock = self.mails, threading.Lock()

        class Session(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self._say("220 sink ESMTP")
                while line := self.rfile.readline():
                    verb = line.decode("ascii", "replace").strip().split(" ")[0].upper()
                    if verb == "EHLO":
                        self._say("250-sink", "250 8BITMIME")
                    elif verb == "DATA":
                        self._say("354 end with <CRLF>.<CRLF>")
                        message = BytesParser(policy=default).parsebytes(self._data())
                        assert isinstance(message, EmailMessage)
                        with lock:
                            mails.append(message)
                        self._say("250 kept")
                    elif verb == "QUIT":
                        self._say("221 bye")
                        return
                    else:  # HELO, MAIL FROM, RCPT TO, RSET, NOOP
                        self._say("250 ok")

            def _data(self) -> bytes:
                lines = []
                while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    lines.append(line[1:] if line.startswith(b"..") else line)
                return b"".join(lines)

            def _say(self, *lines: str) -> None:
                self.wfile.write(b"".join(f"{line}\r\n".encode() for line in lines))

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Session)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]

    def subjects(self) -> list[str]:
        return [str(mail["Subject"]) for mail in list(self.mails)]

    @contextmanager
    def running(self) -> Iterator[MailSink]:
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()
