"""Where a message body waits while it is judged: in memory up to a threshold, then
in a private temporary file.

The file is anonymous: ``tempfile.TemporaryFile`` opens it with ``O_TMPFILE`` (mode
0600, never linked into the directory) where the file system supports it, and
otherwise creates it 0600 and unlinks it at once. Either way no name is left behind,
not even when the process is killed; closing the spool frees the space.

Writes are plain blocking writes (to the page cache, 64 KiB at a time), as Postfix's
own queue files are written; the event loop is held for microseconds per chunk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from types import TracebackType
from typing import IO


class Spool:
    def __init__(self, threshold: int, directory: str | None = None) -> None:
        self.threshold = threshold
        self.directory = directory
        self.size = 0
        self._memory: list[bytes] = []
        self._file: IO[bytes] | None = None

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def write(self, data: bytes) -> None:
        if not data:
            return
        self.size += len(data)
        if self._file is not None:
            self._file.write(data)
            return
        self._memory.append(data)
        if self.size > self.threshold:
            self._file = tempfile.TemporaryFile(prefix="mailseal-", dir=self.directory)  # noqa: SIM115 -- closed by close()
            for chunk in self._memory:
                self._file.write(chunk)
            self._memory.clear()

    def chunks(self, size: int = 1 << 16) -> Iterator[bytes]:
        """The body from the start, in chunks of about ``size`` octets."""
        if self._file is None:
            yield from self._memory
            return
        self._file.flush()
        self._file.seek(0)
        while chunk := self._file.read(size):
            yield chunk

    def close(self) -> None:
        self._memory.clear()
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
