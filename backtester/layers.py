"""The Redis channel layer, with two repairs for a server whose clients come and go.

1. **A disconnecting client could swallow another client's message.** All the
   consumers of one process share one Redis list for their messages; whichever
   of them holds the layer's receive lock pops the next message (``BZPOPMIN``)
   and hands it to its owner through an in-process buffer. A popped message is
   copied to a backup set only by a second command (``ZADD``) after the pop's
   reply is read. When a client disconnects, Channels cancels its consumer's
   receive; if that consumer held the lock, the cancel lands between the pop and
   the backup, and the message it had just taken for *another* consumer - a
   run's batch of results, or its ``complete`` - is gone. Under churn (clients
   connecting, starting a run and leaving while others finish), 1-2 of 10
   finishing clients lost one coin's batch this way. Here the pop and its backup
   run shielded from the cancel; a message that arrives after the receiver left
   is handed to the consumer it was for, or left in the backup, from which the
   next receive puts it back in the queue.
2. **Redis going away closed every socket.** A consumer's receive raised the
   connection error out of the consumer, and the websocket was closed with 1011
   before anyone could tell the client why. Here the receive waits and tries
   again, so the consumer lives on to report the failed run (see consumers.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Seconds between receive attempts while Redis cannot be reached.
RECEIVE_RETRY = 1.0


class RedisChannelLayer(BaseRedisChannelLayer):
    """channels-redis' layer that loses no message to a cancelled receive."""

    async def receive(self, channel: str) -> dict:
        warned = False
        while True:
            try:
                return await super().receive(channel)
            except (RedisError, OSError) as exc:
                if not warned:
                    logger.warning(
                        "channel layer: Redis unavailable (%s); retrying", exc
                    )
                    warned = True
                await asyncio.sleep(RECEIVE_RETRY)

    async def _brpop_with_clean(self, index: int, channel: str, timeout: float):
        pop = asyncio.ensure_future(super()._brpop_with_clean(index, channel, timeout))
        try:
            return await asyncio.shield(pop)
        except asyncio.CancelledError:
            # The pop goes on without its receiver: deliver what it takes.
            pop.add_done_callback(functools.partial(self._hand_over, index, channel))
            raise

    def _hand_over(self, index: int, channel_key: str, pop: asyncio.Future) -> None:
        """Give a message popped for a receiver that has gone to its consumer."""
        if pop.cancelled() or pop.exception() is not None or pop.result() is None:
            return
        message = self.deserialize(pop.result())
        targets = message.pop("__asgi_channel__", None)
        if isinstance(targets, str):
            targets = [targets]
        # Only consumers waiting in this process have a buffer; a message for
        # none of them stays in the backup, and the next receive requeues it.
        live = [t for t in targets or () if t in self.receive_buffer]
        if not live:
            return
        for target in live:
            self.receive_buffer[target].put_nowait(dict(message))
        # As a normal receive does: the message is delivered, drop its backup.
        cleaner = asyncio.ensure_future(self._clean_receive_backup(index, channel_key))
        self.receive_cleaners.append(cleaner)
        cleaner.add_done_callback(self.receive_cleaners.remove)
