"""Handles on the phones (``phones.Worker``): on the coordinator's own event loop, or in a worker
process driven over a pipe. The coordinator calls both the same way."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing

from . import phones
from .options import LoadTestError


class LocalWorker:
    """Phones on the coordinator's own event loop (``--processes 1``)."""

    def __init__(self, index: int, config: dict, indexes: list[int]) -> None:
        self.worker = phones.Worker(index, config, indexes)

    async def call(self, command: str, **arguments):
        return await getattr(self.worker, command)(**arguments)

    def progress(self) -> dict:
        return self.worker.progress()

    async def stop(self) -> None:
        if self.worker.heartbeat is not None:
            self.worker.heartbeat.cancel()


class ProcessWorker:
    """Phones in a worker process, driven over a pipe."""

    def __init__(self, index: int, config: dict, indexes: list[int]) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process = context.Process(
            target=phones.serve,
            args=(child, index, config, indexes),
            name=f"loadtest-worker-{index}",
            daemon=True,
        )
        self.process.start()
        child.close()
        self.pending: dict[int, asyncio.Future] = {}
        self.last: dict = {}
        self.next_id = 0
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.connection.fileno(), self._readable)

    def _readable(self) -> None:
        try:
            message = self.connection.recv()
        except (EOFError, OSError):
            self.loop.remove_reader(self.connection.fileno())
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(LoadTestError("a load-generator process died"))
            self.pending.clear()
            return
        if message[0] == "progress":
            self.last = message[1]
            return
        request_id, status, result = message
        future = self.pending.pop(request_id, None)
        if future is None or future.done():
            return
        if status == "ok":
            future.set_result(result)
        else:
            future.set_exception(LoadTestError(f"worker: {result}"))

    async def call(self, command: str, **arguments):
        self.next_id += 1
        future = self.loop.create_future()
        self.pending[self.next_id] = future
        self.connection.send((self.next_id, command, arguments))
        return await future

    def progress(self) -> dict:
        return self.last

    async def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.loop.remove_reader(self.connection.fileno())
            self.connection.send((None, "exit", {}))
        await asyncio.to_thread(self.process.join, 10)
        if self.process.is_alive():
            self.process.kill()
        with contextlib.suppress(OSError):
            self.connection.close()
