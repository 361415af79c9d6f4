"""Several Lua scripts in one pipeline, called by SHA alone.

redis-py's pipeline asks Redis ``SCRIPT EXISTS`` for its scripts before every execution: a round
trip more than the pipeline itself. Here the scripts are called by SHA; only when Redis has lost
them (a restart, ``SCRIPT FLUSH``) are they loaded and the pipeline sent again. Only scripts that
may run twice go through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

#: One script call: the script, its keys, its arguments.
Call = tuple[AsyncScript, Sequence[str], Sequence[Any]]


async def pipelined(redis: Redis, calls: Sequence[Call]) -> list[Any]:
    """Each call's result, in order (none: no round trip); raises what the first failing call raised."""
    if not calls:
        return []
    for _ in range(2):
        async with redis.pipeline(transaction=False) as pipe:
            for script, keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)
            try:
                return list(await pipe.execute())
            except NoScriptError:
                pass
        for script in {script.sha: script for script, _, _ in calls}.values():
            await redis.script_load(script.script)
    raise NoScriptError("the scripts could not be loaded")
