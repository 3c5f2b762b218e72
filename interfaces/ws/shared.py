"""What the WebSocket sessions of one process share: the hub of live bus subscriptions, the
sockets each user or key holds, and each live event's message, decided once per filter and
encoded (and framed, interfaces/ws/frames.py) once: the same for every socket that has the same
subscription."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import msgspec

from application.public_events import PublicEvent
from interfaces.ws.filter import Filter, Place
from interfaces.ws.frames import Outgoing
from interfaces.ws.hub import Hub
from interfaces.ws.messages import event_message
from interfaces.ws.poison import SocketGuard

_encoder = msgspec.json.Encoder()


class Shared:
    """What the sockets of one process share: the guard, the hub of live subscriptions, and
    the last event messages encoded (the same for every socket that has the same subscription,
    so encoded once)."""

    TEXTS = 1_024  # encoded event messages remembered

    def __init__(self, guard: SocketGuard) -> None:
        self.guard = guard  # events a socket cannot take: skipped, quarantined once
        self.hub = Hub()
        self.connections = 0
        self.sockets_of: dict[str, int] = {}  # sockets per user or key (actor id)
        self._messages: OrderedDict[tuple[int, str, Place], Outgoing] = OrderedDict()
        self._event: PublicEvent | None = None  # the live event being handed out, and
        self._outcomes: dict[tuple[Any, ...], Outgoing | None] = {}  # what each filter made of it

    def outcome(self, event: PublicEvent, events: Filter) -> Outgoing | None:
        """A live event's message for a subscription (None: not for it), decided once per event
        for all the subscriptions with the same filter."""
        if event is not self._event:
            self._event, self._outcomes = event, {}
        if events.key in self._outcomes:
            return self._outcomes[events.key]
        place = events.place(event)
        message = None if place is None else self.message(event, events.spec.key, place)
        self._outcomes[events.key] = message
        return message

    def message(self, event: PublicEvent, subscription: str, place: Place) -> Outgoing:
        key = (event.position, subscription, place)
        message = self._messages.get(key)
        if message is None:
            text = _encoder.encode(event_message(event, subscription, *place)).decode()
            message = self._messages[key] = Outgoing(text)
            if len(self._messages) > self.TEXTS:
                self._messages.popitem(last=False)
        return message
