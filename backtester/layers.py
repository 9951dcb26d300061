"""The Redis channel layer, with two repairs for a server whose clients come and go.

1. **A disconnecting client could swallow another client's message.** All the
   consumers of one process share one Redis list for their messages; whichever
   of them holds the layer's receive lock pops the next message (``BZPOPMIN``)
   and hands it to its owner through an in-process buffer. A popped message is
   copied to a backup set only by a second command (``ZADD``) after the pop's
   reply is read. When a client disconnects, Channels cancels its consumer's
   receive; if that consumer held the lock, the cancel lands between the pop and
   the backup (or while the pop's reply waits to be read: redis-py then drops
   the connection), and the message it had just taken for *another* consumer -
   a run's batch of results, or its ``complete`` - is gone. Under churn
   (clients connecting, starting a run and leaving while others finish), 1-2 of
   10 finishing clients lost one coin's batch this way. Here the pop and its
   backup run shielded from the cancel, and a message such a pop takes after
   its receiver left is moved back to the queue, where the consumer holding the
   lock next pops it and hands it to its owner.
2. **Redis going away closed every socket.** A consumer's receive raised the
   connection error out of the consumer, and the websocket was closed with 1011
   before anyone could tell the client why. Here the receive waits and tries
   again, so the consumer lives on to report the failed run (see consumers.py);
   and after Redis restarts, a command that meets a dead pooled connection is
   sent once more on a new one (the first run after Redis came back failed).
"""

from __future__ import annotations

import asyncio
import functools
import logging

from channels_redis.core import RedisChannelLayer as BaseRedisChannelLayer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# Seconds between receive attempts while Redis cannot be reached.
RECEIVE_RETRY = 1.0
# Move one message from the backup set (KEYS[2]) back to its queue (KEYS[1])
# with its original score, so it keeps its place and its expiry.
REQUEUE = """
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
if score then
    redis.call('ZREM', KEYS[2], ARGV[1])
    redis.call('ZADD', KEYS[1], score, ARGV[1])
end
"""


class RedisChannelLayer(BaseRedisChannelLayer):
    """channels-redis' layer that loses no message to a cancelled receive."""

    # A pop whose receiver left runs on until it returns (see _requeue): a
    # shorter blocking pop than the default 5 s ends such a pop sooner.
    brpop_timeout = 1

    async def _once_more(self, method, *args):
        """Call a layer method; on a connection error, call it once more.

        After Redis restarts, the pooled connections are dead: the first command
        on each fails, and a new connection would work. Without this, the first
        run after Redis came back failed.
        """
        try:
            return await method(*args)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            logger.info("channel layer: retrying after %r", exc)
            return await method(*args)

    async def send(self, channel: str, message: dict) -> None:
        await self._once_more(super().send, channel, message)

    async def group_add(self, group: str, channel: str) -> None:
        await self._once_more(super().group_add, group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await self._once_more(super().group_discard, group, channel)

    async def group_send(self, group: str, message: dict) -> None:
        await self._once_more(super().group_send, group, message)

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
            # The pop goes on without its receiver: put what it takes back.
            pop.add_done_callback(functools.partial(self._requeue, index, channel))
            raise

    def _requeue(self, index: int, channel_key: str, pop: asyncio.Future) -> None:
        """Move a message popped for a receiver that has gone back to the queue,
        where the consumer now holding the receive lock pops it again."""
        if pop.cancelled() or pop.exception() is not None or pop.result() is None:
            return
        task = asyncio.ensure_future(
            self.connection(index).eval(
                REQUEUE,
                2,
                channel_key,
                self._backup_channel_name(channel_key),
                pop.result(),
            )
        )
        self.receive_cleaners.append(task)
        task.add_done_callback(self.receive_cleaners.remove)
