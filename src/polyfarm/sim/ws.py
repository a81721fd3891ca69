"""The market-channel WebSocket: subscriptions, fan-out and per-connection writers.

Each world event is encoded once (``wsmessages``) and the same bytes are queued to every
subscribed connection. A connection's writer drains its queue; under backlog it coalesces
queued objects into one JSON-array frame, as the real feed does during bursts. Subscriptions
beyond the per-connection asset cap are accepted silently and get no data. Faults are applied
per message in the writer; a stalled connection keeps answering ``PING`` but sends nothing else.

As on the venue, a connection that sends no ``PING`` (text or protocol frame) for the idle
timeout is closed, and a first frame that is not a valid subscription (``assets_ids`` with
``type: market``) leaves the connection open but silent: it answers ``PING`` and delivers
nothing, whatever it sends later.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from polyfarm.logs import get_logger
from polyfarm.sim.faults import FaultController
from polyfarm.sim.model import MarketCreated, MarketState, TradeEvent, WorldEvent
from polyfarm.sim.world import World
from polyfarm.sim.wsmessages import Outbound, book_message, encode

_ENDED = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})
COALESCE_AT = 64
COALESCE_MAX = 256
DUMP_CHUNK = 50
MAX_QUEUE = 250_000
PONG = b"PONG"
# A PING the client sent while this server was busy (its event loop held by other work: a
# venue-sized Gamma page, a history answer) is still unread when the idle deadline passes; one
# more short wait lets it be read, so that only a client that really went quiet is closed, as
# on the venue. Without it, a loop held longer than the idle timeout less the client's PING
# interval (at venue scale, 10 s less 5 s) closes every connection at once.
IDLE_GRACE_S = 1.0
NO_NEW_ASSETS = b"NO NEW ASSETS"

log = get_logger(__name__)


@dataclass(slots=True)
class Item:
    payload: bytes
    messages: int = 1
    mergeable: bool = True  # a single JSON object that may join an array frame
    # The corruption applied to ``payload`` (ws_malformed, hash_mismatch): counted as injected
    # when the frame is sent, not when rolled, since a held or dropped frame never arrives.
    corruption: str | None = None


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    transport: asyncio.Transport | None
    cap: int
    assets: dict[str, None] = field(default_factory=dict)
    custom: bool = False
    queue: deque[Item] = field(default_factory=deque)
    control: deque[bytes] = field(default_factory=deque)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    stalled: bool = False
    closed: bool = False
    held: Item | None = None
    over_cap: int = 0
    subscribed: bool = False  # a valid first frame arrived
    muted: bool = False  # the first frame was not a valid subscription: nothing is delivered
    last_ping: float = field(default_factory=time.monotonic)

    def push(self, item: Item) -> None:
        if self.stalled or self.closed or self.muted:
            return
        self.queue.append(item)
        self.wakeup.set()


def _event_market(event: WorldEvent) -> MarketState:
    return event.trade.market if isinstance(event, TradeEvent) else event.market


class Hub:
    def __init__(
        self,
        world: World,
        faults: FaultController,
        cap: int,
        counters: dict[str, int],
        idle_timeout_s: float = 0.0,
    ):
        self.world = world
        self.faults = faults
        self.cap = cap
        self.counters = counters
        self.idle_timeout_s = idle_timeout_s
        self.subs: dict[str, set[Connection]] = {}
        self.connections: set[Connection] = set()

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, conn: Connection, assets: Iterable[str]) -> list[str]:
        """Add assets up to the cap; returns the newly subscribed ones (duplicates ignored)."""
        added = []
        for asset in assets:
            if not isinstance(asset, str) or asset in conn.assets:
                continue
            if len(conn.assets) >= conn.cap:
                conn.over_cap += 1
                continue
            conn.assets[asset] = None
            self.subs.setdefault(asset, set()).add(conn)
            added.append(asset)
        return added

    def unsubscribe(self, conn: Connection, assets: Iterable[str]) -> None:
        for asset in assets:
            if asset in conn.assets:
                del conn.assets[asset]
                self._drop_sub(asset, conn)

    def _drop_sub(self, asset: str, conn: Connection) -> None:
        holders = self.subs.get(asset)
        if holders is not None:
            holders.discard(conn)
            if not holders:
                del self.subs[asset]

    def register(self, conn: Connection) -> None:
        self.connections.add(conn)
        self.counters["ws_connections_total"] = self.counters.get("ws_connections_total", 0) + 1

    def unregister(self, conn: Connection) -> None:
        self.connections.discard(conn)
        for asset in list(conn.assets):
            self._drop_sub(asset, conn)
        conn.assets.clear()

    def is_watched(self, market: MarketState) -> bool:
        return market.yes_token in self.subs or market.no_token in self.subs

    # -- fan-out ------------------------------------------------------------------------------

    def book_dump(self, assets: list[str]) -> list[Item]:
        """``book`` snapshots for open assets, as array frames of up to ``DUMP_CHUNK``."""
        books = []
        for asset in assets:
            found = self.world.token(asset)
            if found is not None and self.world.open_book(found[0]):
                books.append(book_message(found[0], found[1]))
        return [
            Item(
                b"[" + b",".join(books[i : i + DUMP_CHUNK]) + b"]",
                len(books[i : i + DUMP_CHUNK]),
                False,
            )
            for i in range(0, len(books), DUMP_CHUNK)
        ]

    def publish(self, events: list[WorldEvent]) -> None:
        """Encode each world event once and queue it to every interested connection."""
        if not self.connections:
            return
        custom_any = any(c.custom for c in self.connections)
        for event in events:
            wanted = (
                custom_any
                if isinstance(event, MarketCreated)
                else self.is_watched(_event_market(event))
            )
            if wanted:
                for out in encode(event):
                    self._deliver(out)

    def _recipients(self, out: Outbound) -> set[Connection]:
        if out.broadcast:
            return {c for c in self.connections if c.custom}
        found: set[Connection] = set()
        for asset in out.assets:
            found |= self.subs.get(asset, set())
        if out.custom_only:
            return {c for c in found if c.custom}
        return found

    def _deliver(self, out: Outbound) -> None:
        item = Item(out.payload)
        for conn in self._recipients(out):
            if len(conn.queue) >= MAX_QUEUE:
                self.counters["ws_slow_consumer_dropped"] = (
                    self.counters.get("ws_slow_consumer_dropped", 0) + 1
                )
                self._abort(conn)
                continue
            conn.push(item)

    def no_new_assets(self) -> None:
        for conn in self.connections:
            if conn.custom:
                conn.push(Item(NO_NEW_ASSETS, 1, False))

    def _abort(self, conn: Connection) -> None:
        conn.closed = True
        conn.queue.clear()
        if conn.transport is not None:
            conn.transport.abort()
        conn.wakeup.set()

    async def close_all(self, deadline_s: float = 2.0) -> None:
        """Close every connection concurrently (1001 going away); abort stragglers."""
        connections = list(self.connections)
        for conn in connections:
            conn.closed = True
            conn.wakeup.set()
        try:
            async with asyncio.timeout(deadline_s), asyncio.TaskGroup() as group:
                for conn in connections:
                    group.create_task(conn.ws.close(code=1001, message=b"server shutdown"))
        except TimeoutError:
            for conn in connections:
                self._abort(conn)

    # -- per-connection writer ----------------------------------------------------------------

    async def writer(self, conn: Connection) -> None:
        try:
            while not conn.closed:
                await conn.wakeup.wait()
                conn.wakeup.clear()
                await self._drain(conn)
        except (ConnectionError, RuntimeError) as exc:
            log.debug("ws writer stopped", error=str(exc))
            conn.closed = True

    async def _send(
        self, conn: Connection, payload: bytes, messages: int, corruption: str | None = None
    ) -> None:
        await conn.ws.send_frame(payload, WSMsgType.TEXT)
        if corruption is not None:
            self.faults.count(corruption)
        self.counters["ws_frames_sent"] = self.counters.get("ws_frames_sent", 0) + 1
        self.counters["ws_messages_sent"] = self.counters.get("ws_messages_sent", 0) + messages

    async def _drain(self, conn: Connection) -> None:
        while not conn.closed:
            while conn.control:
                await conn.ws.send_frame(conn.control.popleft(), WSMsgType.TEXT)
            if conn.stalled:
                conn.queue.clear()
                return
            if not conn.queue:
                break
            if self.faults.ws_active:
                await self._send_faulty(conn, conn.queue.popleft())
            else:
                await self._send_plain(conn)
        if conn.held is not None and not conn.closed:
            held, conn.held = conn.held, None
            await self._send(conn, held.payload, held.messages, held.corruption)

    async def _send_plain(self, conn: Connection) -> None:
        queue = conn.queue
        if len(queue) < COALESCE_AT or not queue[0].mergeable:
            item = queue.popleft()
            await self._send(conn, item.payload, item.messages)
            return
        batch: list[bytes] = []
        while queue and queue[0].mergeable and len(batch) < COALESCE_MAX:
            batch.append(queue.popleft().payload)
        await self._send(conn, b"[" + b",".join(batch) + b"]", len(batch))

    async def _send_faulty(self, conn: Connection, item: Item) -> None:
        faults = self.faults
        if faults.roll("ws_drop", "ws"):
            self._abort(conn)
            return
        if faults.roll("ws_stall", "ws"):
            conn.stalled = True
            conn.queue.clear()
            return
        payload, corruption = _corrupt(faults, item.payload)
        if conn.held is None and faults.roll("ws_out_of_order", "ws"):
            conn.held = Item(payload, item.messages, item.mergeable, corruption)
            return
        await self._send(conn, payload, item.messages, corruption)
        if conn.held is not None:
            held, conn.held = conn.held, None
            await self._send(conn, held.payload, held.messages, held.corruption)
        if faults.roll("ws_duplicate", "ws"):
            await self._send(conn, payload, item.messages, corruption)


def _corrupt(faults: FaultController, payload: bytes) -> tuple[bytes, str | None]:
    """The payload as sent, and the corruption applied to it (drawn, not yet counted)."""
    if faults.draw("ws_malformed", "ws"):
        return payload[: max(len(payload) // 2, 1)] + b"\x00", "ws_malformed"
    marker = payload.find(b'"hash":"')
    if marker >= 0 and faults.draw("hash_mismatch", "ws"):
        start = marker + len(b'"hash":"')
        wrong = hashlib.sha1(payload[start : start + 40], usedforsecurity=False).hexdigest()
        return payload[:start] + wrong.encode() + payload[start + 40 :], "hash_mismatch"
    return payload, None


def parse_command(text: str) -> dict[str, Any] | None:
    """A subscribe/unsubscribe frame, or None for anything unusable."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("assets_ids"), list):
        return None
    return data


def _valid_first(command: dict[str, Any] | None) -> bool:
    """The initial subscription: ``assets_ids`` and ``type: market``, no ``operation``."""
    return (
        command is not None
        and "operation" not in command
        and str(command.get("type", "")).lower() == "market"
    )


def _accepted(hub: Hub, conn: Connection, text: str) -> dict[str, Any] | None:
    """The frame as a command, or None: unusable, or the connection is muted (by this frame,
    when it is the first and not a valid subscription)."""
    if conn.muted:
        return None
    command = parse_command(text)
    if not conn.subscribed and not _valid_first(command):
        conn.muted = True
        hub.counters["ws_bad_first_frame"] = hub.counters.get("ws_bad_first_frame", 0) + 1
        log.info("first ws frame is no subscription: connection stays silent", raw=text[:200])
        return None
    conn.subscribed = True
    if command is None:
        log.info("ignoring unusable ws frame", raw=text[:200])
    return command


def handle_text(hub: Hub, conn: Connection, text: str) -> None:
    """One client frame: ``PING``, an initial subscription or a dynamic (un)subscribe."""
    if text.strip() == "PING":
        conn.last_ping = time.monotonic()
        conn.control.append(PONG)
        conn.wakeup.set()
        return
    command = _accepted(hub, conn, text)
    if command is None:
        return
    if "custom_feature_enabled" in command:
        conn.custom = bool(command["custom_feature_enabled"])
    operation = command.get("operation")
    assets = command["assets_ids"]
    if operation == "unsubscribe":
        hub.unsubscribe(conn, assets)
        return
    if operation not in (None, "subscribe"):
        return
    if operation is None and str(command.get("type", "market")).lower() != "market":
        return
    added = hub.subscribe(conn, assets)
    if command.get("initial_dump", True):
        for item in hub.book_dump(added):
            conn.push(item)


async def market_channel(hub: Hub, request: web.Request) -> web.WebSocketResponse:
    """Serve one market-channel connection until either side closes it."""
    ws = web.WebSocketResponse(
        timeout=2.0, compress=False, max_msg_size=8 * 1024 * 1024, autoping=False
    )
    await ws.prepare(request)
    conn = Connection(ws, request.transport, hub.cap)
    hub.register(conn)
    try:
        async with asyncio.TaskGroup() as group:
            writer = group.create_task(hub.writer(conn))
            await _read(hub, conn)
            conn.closed = True
            writer.cancel()
    finally:
        hub.unregister(conn)
    return ws


async def _frame_within(ws: web.WebSocketResponse, seconds: float) -> WSMessage | None:
    try:
        return await ws.receive(timeout=seconds)
    except TimeoutError:
        return None


async def _read(hub: Hub, conn: Connection) -> None:
    """Client frames until the client leaves or stays idle past the timeout."""
    ws, idle = conn.ws, hub.idle_timeout_s
    while not ws.closed:
        wait = None if idle <= 0 else max(conn.last_ping + idle - time.monotonic(), 0.0)
        try:
            message = await ws.receive(timeout=wait)
        except TimeoutError:
            late = await _frame_within(ws, IDLE_GRACE_S)
            if late is None:
                hub.counters["ws_idle_closed"] = hub.counters.get("ws_idle_closed", 0) + 1
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"idle: no PING")
                return
            message = late
        if message.type is WSMsgType.TEXT:
            handle_text(hub, conn, message.data)
        elif message.type is WSMsgType.PING:  # a protocol-level ping keeps the line alive too
            conn.last_ping = time.monotonic()
            await ws.pong(message.data)
        elif message.type in _ENDED:
            return
