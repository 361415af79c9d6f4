"""Long polling that confirms an update to Telegram only after it is recorded in Redis.

Telegram drops updates up to ``offset - 1`` when it sees the next ``getUpdates``; this loop asks
with a new offset only once the whole batch is in the mailboxes, so a crash at any point loses
nothing: unrecorded updates come again, recorded ones are deduplicated.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from telegram import Bot
from telegram.error import (
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
)
from telegram.warnings import PTBUserWarning

from bot.clock import Clock
from storage import StorageError

# do_api_request("getUpdates") is deliberate (see poll); PTB would rather we used get_updates.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)

log = logging.getLogger(__name__)

POLL_SECONDS = 25
MAX_BACKOFF = 30.0

Record = Callable[[Mapping[str, Any]], Awaitable[bool]]


class PollingFailed(Exception):
    """Telegram refuses this bot (revoked token): polling cannot go on."""


async def poll(
    bot: Bot, record: Record, clock: Clock, *, allowed_updates: Sequence[str],
    poll_seconds: int = POLL_SECONDS,
) -> None:
    """Fetch and record updates until cancelled; raises PollingFailed when the token is refused."""
    offset = 0
    backoff = 0.0
    while True:
        if backoff:
            await clock.sleep(backoff)
        try:
            # Telegram's own JSON, not PTB objects turned back into dicts: that round trip is
            # lossy (a pinned message with date 0 comes back holding a datetime).
            batch: list[dict[str, Any]] = await bot.do_api_request(
                "getUpdates",
                api_kwargs={"offset": offset, "timeout": poll_seconds,
                            "allowed_updates": list(allowed_updates)},
                read_timeout=poll_seconds + 10,
            )
            for update in batch:
                await record(update)
        # getUpdates always exists: do_api_request's "not found" is Telegram refusing the token.
        except (InvalidToken, EndPointNotFound, Forbidden):
            raise PollingFailed("Telegram refused the bot token") from None
        except Conflict:
            log.error("getUpdates conflicts with a webhook or another poller; "
                      "run 'yuanqi-bot delete-webhook' or stop the other process")
            backoff = MAX_BACKOFF
            continue
        except (NetworkError, TelegramError) as exc:
            log.warning("getUpdates failed: %s", exc.message)
            backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
            continue
        except StorageError as exc:  # not confirmed: Telegram sends the batch again
            log.error("could not record updates, Redis failed: %s", exc)
            backoff = min(MAX_BACKOFF, max(1.0, backoff * 2))
            continue
        backoff = 0.0
        ids = [u["update_id"] for u in batch if isinstance(u.get("update_id"), int)]
        if ids:
            offset = max(ids) + 1
