"""What an SIS file is, judged from its bytes, and the `extension` to send Canvas for it. Pure.

Canvas reads the upload as the `extension` says (a raw body without one is taken for a zip), so
a CSV sent as `zip` fails inside Canvas minutes later. The name may lie (`users.txt`, a zip saved
as `.csv`); the first bytes do not.
"""

from __future__ import annotations

from typing import Final, Literal

Extension = Literal["zip", "csv", "xml"]
EXTENSIONS: Final[tuple[Extension, ...]] = ("zip", "csv", "xml")
_ZIP_MAGIC: Final = (b"PK\x03\x04", b"PK\x05\x06")
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_HEAD: Final = 64 * 1024


class FileTypeMismatch(ValueError):
    """The file is not what its name or `--extension` says, or not an SIS file at all."""


def sniff(content: bytes) -> Extension | None:
    """zip, xml or csv from the first bytes; None for anything else (binary, not UTF-8)."""
    if content.startswith(_ZIP_MAGIC):
        return "zip"
    head = content[:_HEAD].removeprefix(_UTF8_BOM)
    if b"\x00" in head:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(content) <= _HEAD or exc.start < len(head) - 3:  # not a character cut at the edge
            return None
        text = head[: exc.start].decode("utf-8")
    return "xml" if text.lstrip().startswith("<") else "csv"


def _described(kind: Extension | None) -> str:
    return {"zip": "a zip", "csv": "CSV text", "xml": "XML", None: "neither a zip nor UTF-8 text"}[kind]


def choose_extension(file_name: str, content: bytes, given: str | None) -> tuple[Extension, str | None]:
    """The extension to send, and a note for the person when it was not plain from the name.

    Raises `FileTypeMismatch` when the bytes contradict `given` (or the file's suffix), so that
    nothing Canvas would misread is sent.
    """
    found = sniff(content)
    if found is None:
        raise FileTypeMismatch(f"{file_name} is {_described(None)}: Canvas imports zip, CSV or XML files")
    if given is not None:
        if given != found:
            raise FileTypeMismatch(
                f"{file_name} is {_described(found)}, but --extension says {given}: "
                f"pass --extension {found} (or leave it out)"
            )
        return found, None
    suffix = file_name.rpartition(".")[2].lower() if "." in file_name else ""
    if suffix in EXTENSIONS:
        if suffix != found:
            raise FileTypeMismatch(
                f"{file_name} is {_described(found)}, not what its name says: "
                f"rename it, or pass --extension {found} to send it as {found}"
            )
        return found, None
    return found, f"{file_name}: sent as {found} (from its content)"
