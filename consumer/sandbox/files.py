"""The simulated Canvas's files: attachments of SIS batches and their bytes. No I/O.

Canvas stores an upload as the batch's attachment, makes one attachment per CSV when the import
job unpacks it (`csv_attachments`: the extracted files, not the zip), and writes a CSV of every
error and warning as `errors_attachment` (docs/canvas.md, "Files of an import"). Each is
downloadable at `/files/:id/download`, by an admin's token or by the `verifier` in its URL.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from consumer.sandbox.model import Attachment


@dataclass(frozen=True, slots=True)
class StoredFile:
    attachment: Attachment
    data: bytes
    account_id: int
    """The root account whose admins may download it."""
    verifier: str


class FileStore:
    def __init__(self, clock: Callable[[], datetime], first_id: int = 5_000_001) -> None:
        self._clock = clock
        self._ids = itertools.count(first_id)
        self._files: dict[int, StoredFile] = {}

    def add(self, account_id: int, name: str, content_type: str, data: bytes) -> Attachment:
        attachment = Attachment(
            id=next(self._ids),
            uuid=uuid.uuid4().hex,
            display_name=name,
            filename=name,
            content_type=content_type,
            size=len(data),
            created_at=self._clock(),
            verifier=secrets.token_urlsafe(16),
        )
        self._files[attachment.id] = StoredFile(attachment, data, account_id, attachment.verifier)
        return attachment

    def get(self, attachment_id: int) -> StoredFile | None:
        return self._files.get(attachment_id)
