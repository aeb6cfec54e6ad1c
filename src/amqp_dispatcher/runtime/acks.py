"""One channel's acknowledgements, coalesced: which frames settle exactly what the service answered.

Owns the delivery tags a channel has delivered and not yet settled on the wire, and turns the
service's answers into the fewest frames that settle exactly those: a run of acked tags with
no unanswered tag below it becomes one basic.ack with multiple=true for its highest tag; an
acked tag above a gap (a delivery still in a handler, or never answered) goes alone; a nack or
reject first sends the acks waiting, then goes alone. `AckCoalescer` decides which frames and
is pure; `HeldAcks`, the settling half of both AMQP transports' channels, decides when: at
the hub's next turn, or as soon as half the prefetch window waits. Knows nothing of AMQP
libraries or of how a channel writes its frames.

Why multiple=true is safe: it settles every tag up to its own that is still unacknowledged on
that channel, so it is sent only across tags this class has seen delivered, each of them acked
by the service or already settled by an earlier frame. A tag it never saw (a gap in the
numbering) is never crossed: from there on, acks go one by one.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import gevent

from .transport import Settlement

# Acks held back before they are sent without waiting for the flush, when the channel has no
# prefetch window to take half of (basic.get, or an unlimited prefetch).
DEFAULT_THRESHOLD = 256
# Tags remembered above a gap that stays open (a handler that never returns): past this many,
# the channel stops coalescing rather than remember more.
SENT_LIMIT = 65536


class Frame(NamedTuple):
    """One settling frame: `multiple` only on an ack, `requeue` only on a nack or reject."""

    how: Settlement
    tag: int
    multiple: bool = False
    requeue: bool = False


class AckCoalescer:
    """The acks of one channel, waiting to go out as few frames as possible.

    `delivered` is told every tag in the order the broker numbered them; `ack` holds an ack
    back (True when enough wait that they should go now); `answer` sends a nack or reject,
    after the acks waiting; `flush` sends every ack waiting.
    """

    __slots__ = ("_acked", "_floor", "_order", "_sent", "_tracking", "threshold")

    def __init__(self, threshold: int = DEFAULT_THRESHOLD) -> None:
        self.threshold = threshold
        self._floor = 0  # every tag up to this one was seen, and is settled on the wire
        self._order: deque[int] = deque()  # tags seen above the floor, ascending
        self._acked: set[int] = set()  # acked by the service, not yet sent
        self._sent: set[int] = set()  # above the floor, settled on the wire by a frame of their own
        self._tracking = True  # False after a gap in the numbering: then every ack goes alone

    @property
    def waiting(self) -> int:
        """Acks held back, not yet sent."""
        return len(self._acked)

    def delivered(self, tag: int) -> None:
        if self._tracking:
            self._order.append(tag)

    def ack(self, tag: int) -> bool:
        """Hold an ack back; True when as many wait as the threshold, and they should go now."""
        acked = self._acked
        acked.add(tag)
        return len(acked) >= self.threshold

    def answer(self, how: Settlement, tag: int, *, requeue: bool) -> list[Frame]:
        """A nack or reject: the acks waiting, then its own frame."""
        self._acked.discard(tag)
        frames = self.flush()
        if self._tracking and tag > self._floor:
            self._sent.add(tag)
            self._settled_run()  # no acks wait now: this only raises the floor over it
        frames.append(Frame(how, tag, requeue=requeue))
        return frames

    def flush(self) -> list[Frame]:
        """Every ack waiting, as one multiple ack for the settled run at the bottom and single
        acks for the tags above its first gap; nothing waits afterwards."""
        acked = self._acked
        if not acked:
            return []
        frames: list[Frame] = []
        if self._tracking:
            top, count = self._settled_run()
            if count:
                frames.append(Frame("ack", top, multiple=count > 1))
        if acked:  # above a gap: alone, and remembered as settled until the gap closes
            if self._tracking:
                self._sent.update(acked)
                if len(self._sent) > SENT_LIMIT:
                    self._stop_tracking()
            frames.extend(Frame("ack", tag) for tag in sorted(acked))
            acked.clear()
        return frames

    def forget(self) -> None:
        """The channel closed: the broker requeued everything unsettled, and nothing is sent."""
        self._order.clear()
        self._acked.clear()
        self._sent.clear()

    def _settled_run(self) -> tuple[int, int]:
        """Raise the floor over the run of seen, answered tags at the bottom; the highest acked
        tag in it that is not yet sent (the multiple ack's tag), and how many of those."""
        order, acked, sent = self._order, self._acked, self._sent
        expected = self._floor + 1
        top = count = 0
        while order:
            tag = order[0]
            if tag != expected:  # a tag this channel never saw: it may be unsettled, never cross it
                self._stop_tracking()
                break
            if tag in acked:
                acked.remove(tag)
                top = tag
                count += 1
            elif tag in sent:
                sent.remove(tag)
            else:
                break  # still in a handler, or not answered yet
            order.popleft()
            expected += 1
        self._floor = expected - 1
        return top, count

    def _stop_tracking(self) -> None:
        self._tracking = False
        self._order.clear()
        self._sent.clear()

    def __repr__(self) -> str:
        mode = "coalescing" if self._tracking else "one by one"
        return f"<AckCoalescer {mode} floor={self._floor} waiting={len(self._acked)} unsettled={len(self._order)}>"


class HeldAcks:
    """The settling half of a transport's Channel: acks held back, then sent as few frames.

    A channel mixes it in, calls `_hold_acks()` when it is made and `_ack_window()` when its
    prefetch is set, tells `_acks.delivered` every tag in the order they arrive and
    `_acks.forget()` when it closes, and provides `is_open` and `_send`.
    """

    _acks: AckCoalescer
    _flush_scheduled: bool

    def _hold_acks(self) -> None:
        self._acks = AckCoalescer()
        self._flush_scheduled = False
        self._run_callback = gevent.get_hub().loop.run_callback

    def _ack_window(self, prefetch_count: int) -> None:
        """Acks held back count against the window: half of it waiting is sent without waiting more."""
        self._acks.threshold = max(1, prefetch_count // 2) if prefetch_count else DEFAULT_THRESHOLD

    @property
    def is_open(self) -> bool:
        raise NotImplementedError

    def _send(self, frames: list[Frame]) -> bool:
        """Write these frames; False when they could not be (the channel closed under them)."""
        raise NotImplementedError

    def settle(self, delivery_tag: int, how: Settlement, *, requeue: bool = False) -> bool:
        """ack, nack or reject on this channel; False, sending nothing, if the channel has closed.

        An ack waits for the hub's next turn, or until half the prefetch window waits, so that a
        run of acks goes as one basic.ack with multiple=true; if the channel closes meanwhile it
        is never sent, and the broker requeues the message, as for an ack lost on the wire. A
        nack or reject goes at once, after the acks waiting.
        """
        if not self.is_open:
            return False
        acks = self._acks
        if how != "ack":
            return self._send(acks.answer(how, delivery_tag, requeue=requeue))
        if acks.ack(delivery_tag):
            return self._send(acks.flush())
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._run_callback(self._flush_in_hub)
        return True

    def flush(self) -> None:
        """Send the acks waiting now (before a cancel or a close); nothing once the channel has closed."""
        if self.is_open:
            self._send(self._acks.flush())

    def _flush_in_hub(self) -> None:
        self._flush_scheduled = False
        self.flush()
