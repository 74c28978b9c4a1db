"""Fixtures of the serving tests: real redis-server processes and the fake OpenAI server."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from bentos.cache import MemoryCache, PredictionCache, RedisCache
from tests.fakes.openai_server import FakeOpenAIServer
from tests.servers import free_port, server_process

CacheFactory = Callable[..., PredictionCache]


class RedisServer:
    """A redis-server on 127.0.0.1 that a test may kill, freeze and start again on one port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        self._stack = ExitStack()

    @property
    def url(self) -> str:
        """The redis:// URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the process (no persistence) and wait until it accepts connections."""
        self._starts += 1
        command = [
            shutil.which("redis-server") or "/usr/bin/redis-server",
            *("--bind", "127.0.0.1", "--port", str(self.port), "--save", ""),
            *("--appendonly", "no", "--dir", str(self.workdir)),
        ]
        log = self.workdir / f"redis-{self._starts}.log"
        self.process = self._stack.enter_context(server_process(command, self.port, log))
        return self

    def kill(self) -> None:
        """SIGKILL: the outage a crashed or rebooted Redis causes."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def close(self) -> None:
        """Stop every process this object started."""
        self._stack.close()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the session's ordinary cache tests."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session server's URL, emptied for this test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test only, which it may kill or freeze."""
    server = RedisServer(tmp_path).start()
    yield server
    server.close()


@pytest.fixture(params=["memory", "redis"])
def cache_factory(request: pytest.FixtureRequest) -> Iterator[CacheFactory]:
    """Builds caches of one backend, ``factory(ttl=...)``; the test runs once per backend."""
    made: list[PredictionCache] = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def factory(ttl: float = 300.0) -> PredictionCache:
        cache: PredictionCache = RedisCache(url, ttl) if url else MemoryCache(ttl)
        made.append(cache)
        return cache

    yield factory
    for cache in made:
        cache.close()


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """The fake OpenAI-compatible server, empty script, on a free port."""
    with FakeOpenAIServer() as server:
        yield server
