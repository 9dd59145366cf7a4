"""Commands run inside a running container of the stack, with their output (or input) streamed.

A database dump can be larger than the memory of the machine: `stream_out` yields stdout in
chunks as the command writes it, and `stream_in` feeds stdin from an iterable of chunks, so
neither holds the whole thing.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterable, Iterator

from docker.utils.socket import STDERR, STDOUT, frames_iter


class ExecError(RuntimeError):
    """The command exited non-zero: its exit code and the last lines it wrote on stderr."""

    def __init__(self, command: list[str], code: int, stderr: str):
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        super().__init__(f"`{' '.join(command)}` in the container exited with {code}: {tail or 'no message'}")
        self.code = code
        self.stderr = stderr


def _exit_code(api, exec_id: str) -> int:
    # The stream can end a moment before the engine records the exit code.
    for _ in range(100):
        state = api.exec_inspect(exec_id)
        if not state["Running"] and state["ExitCode"] is not None:
            return state["ExitCode"]
        time.sleep(0.05)
    return api.exec_inspect(exec_id)["ExitCode"] or 0


def run(container, command: list[str], user: str | None = None, check: bool = True) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a short command."""
    chunks, errors = [], []
    api = container.client.api
    exec_id = api.exec_create(container.id, command, stdout=True, stderr=True, user=user or "")["Id"]
    for out, err in api.exec_start(exec_id, stream=True, demux=True):
        if out:
            chunks.append(out)
        if err:
            errors.append(err)
    code = _exit_code(api, exec_id)
    stdout, stderr = b"".join(chunks).decode(errors="replace"), b"".join(errors).decode(errors="replace")
    if check and code != 0:
        raise ExecError(command, code, stderr)
    return code, stdout, stderr


def stream_out(container, command: list[str]) -> Iterator[bytes]:
    """stdout of `command` chunk by chunk; ExecError once it ends with a non-zero code."""
    api = container.client.api
    exec_id = api.exec_create(container.id, command, stdout=True, stderr=True)["Id"]
    errors = []
    for out, err in api.exec_start(exec_id, stream=True, demux=True):
        if out:
            yield out
        if err:
            errors.append(err)
    code = _exit_code(api, exec_id)
    if code != 0:
        raise ExecError(command, code, b"".join(errors).decode(errors="replace"))


def stream_in(container, command: list[str], chunks: Iterable[bytes]) -> str:
    """Feed `chunks` to the command's stdin; its stdout and stderr (read meanwhile, so a chatty
    command never blocks on a full pipe) come back as text. ExecError on a non-zero code."""
    from .docker_engine import connect

    api = container.client.api
    exec_id = api.exec_create(container.id, command, stdin=True, stdout=True, stderr=True)["Id"]
    # The attached connection is taken over for the stream: on a client of its own, closed after,
    # so it never goes back into the pool another request would pick it from.
    own = connect()
    output: list[bytes] = []
    try:
        attached = own.api.exec_start(exec_id, socket=True)
        raw = getattr(attached, "_sock", attached)

        def read() -> None:
            for stream, data in frames_iter(attached, tty=False):
                if stream in (STDOUT, STDERR):
                    output.append(data)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        for chunk in chunks:
            raw.sendall(chunk)
        raw.shutdown(socket.SHUT_WR)
        reader.join()
        raw.close()
    finally:
        own.close()
    code = _exit_code(api, exec_id)
    text = b"".join(output).decode(errors="replace")
    if code != 0:
        raise ExecError(command, code, text)
    return text
