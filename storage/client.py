"""The Redis connection: opening it, checking it, closing it, and the one error type bot/ catches."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

#: The client type bot/ passes around (it never builds one itself).
Connection = Redis

#: Any failure to talk to Redis (unreachable, timed out, refused); bot/ catches only this.
StorageError = RedisError


def connect(
    url: str, *, max_connections: int = 64, wait: float = 20.0, connect_timeout: float | None = None
) -> Redis:
    """A client on a bounded pool: a burst of chats waits for a connection instead of failing."""
    return Redis(connection_pool=BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=wait, socket_connect_timeout=connect_timeout
    ))


async def server_version(redis: Redis) -> str:
    info = await redis.info("server")
    return str(info.get("redis_version", "?"))


async def close(redis: Redis) -> None:
    await redis.aclose(close_connection_pool=True)
