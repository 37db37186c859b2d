"""The lease protocol in every interleaving hypothesis finds: never two writers in different epochs.

A simulation in real time: 2 to 4 replicas, each with its own monotonic clock (an offset and a rate
within 1% of true), share one lease key in an in-memory compare-and-swap store whose ETag is the MD5
of the bytes, as S3's is for a plain PutObject (so a body written twice would keep its ETag).
Hypothesis chooses the interleaving: which replica acts and when, how long time passes, pauses (a
replica frozen past its lease that resumes on stale state), each request's fate (applied at once or
late, even after the client gave up; answered, or its answer lost; or never applied at all).

A replica that may start a bucket write starts one lasting up to the write timeout by its own clock.
The invariant: for the key, no two write windows of different epochs overlap in real time, and
epochs never go back. The same simulation with a replica that writes while it merely believes it
holds the lease (without asking ``may_start_write``) must break it, so the property can fail.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lakecircle.core.lease import Create, Lease, Read, Replace, Wait, decode
from lakecircle.ports import Versioned

DURATION = 30.0
WRITE_TIMEOUT = DURATION / 3
MARGIN = DURATION / 10
CLIENT_TIMEOUT = 5.0
"""Real seconds after which a lease request without an answer is given up (an unknown outcome)."""
KEY = "lease/123456789012.json"
STEPS = 60
STRAGGLER = 2.0
EPOCH_UNIX = 1_750_000_000.0

FATES = st.sampled_from(["answered"] * 5 + ["late", "answer lost", "never applied"])
"""A request's fate: answered, reaching the store within a second; reaching it up to two durations
late (answered, if the client has not given up by then); its answer lost; never reaching the store."""
WRITES = st.sampled_from([None, 0.01, 0.5, 1.0, 1.0, STRAGGLER])
"""Whether a replica that may write starts one, and its length as a share of the write timeout; a
straggler is a write its client gave up on (cut, its answer lost) that still applies up to one more
write timeout later: it leaves the releases of its holder unsettled for two timeouts and the margin."""

PROPERTY = settings(
    max_examples=250,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class CasStore:
    """One object written only on a condition, with S3's ETag for a plain PutObject: the bytes' MD5."""

    def __init__(self) -> None:
        self.object: Versioned | None = None
        self.written: list[bytes] = []

    def read(self) -> Versioned | None:
        return self.object

    def write(self, data: bytes, etag: str | None) -> str | None:
        current = self.object.etag if self.object is not None else None
        if current != etag:
            return None
        new = Versioned(data, '"' + hashlib.md5(data, usedforsecurity=False).hexdigest() + '"')
        self.object = new
        self.written.append(data)
        return new.etag


@dataclass
class Flight:
    """A lease request on its way: when it reaches the store (None: never) and when its answer is back
    (None: lost; the client gives up at ``sent + CLIENT_TIMEOUT``)."""

    step: Read | Create | Replace
    sent: float
    sent_at: float
    apply_at: float | None
    answer_at: float | None
    applied: bool = False
    answer: Versioned | str | None = None


@dataclass
class Replica:
    name: str
    lease: Lease
    offset: float
    rate: float
    wall_stuck: bool
    """Its Unix clock never moves, so only the lease's own stamps keep its bodies apart."""
    flight: Flight | None = None
    wake: float = 0.0
    """The real time its lease last said to wait until."""
    frozen_until: float = 0.0
    busy_until: float = 0.0
    """When its last bucket write ends (a release waits for it, as the driver's does)."""
    stopping: bool = False
    """Told to let go (a shutdown, a lease given back): it starts no write and releases once its writes
    have ended."""
    unsettled_until: float = 0.0
    """Until when a release of its is not settled: a straggler of its may still apply (``Flights``)."""
    believed: int | None = None
    """The epoch its lease held at the end of its last turn (what a replica that does not ask believes)."""

    def clock(self, real: float) -> float:
        return self.offset + real * self.rate


@dataclass(frozen=True)
class Window:
    replica: str
    epoch: int
    start: float
    end: float


@dataclass
class World:
    store: CasStore = field(default_factory=CasStore)
    replicas: list[Replica] = field(default_factory=list)
    flights: list[Flight] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    real: float = 0.0

    def apply_due(self) -> None:
        """Every request that reaches the store by now, in the order they reach it."""
        due = sorted((f for f in self.flights if f.apply_at is not None and f.apply_at <= self.real), key=_apply_at)
        for flight in due:
            step = flight.step
            if isinstance(step, Read):
                flight.answer = self.store.read()
            else:
                flight.answer = self.store.write(step.data, step.etag if isinstance(step, Replace) else None)
            flight.applied = True
            self.flights.remove(flight)


def _apply_at(flight: Flight) -> float:
    return flight.apply_at if flight.apply_at is not None else 0.0


def replicas() -> st.SearchStrategy[list[tuple[float, float, bool]]]:
    one = st.tuples(st.floats(0, 1e6), st.floats(0.99, 1.01), st.booleans())
    return st.lists(one, min_size=2, max_size=4)


def deliver(replica: Replica, world: World, now: float) -> None:
    """Hand the replica its request's answer, or its giving up, once due."""
    flight = replica.flight
    if flight is None:
        return
    answered = flight.answer_at is not None and flight.answer_at - flight.sent <= CLIENT_TIMEOUT
    if answered and flight.applied and flight.answer_at is not None and world.real >= flight.answer_at:
        if isinstance(flight.step, Read):
            assert not isinstance(flight.answer, str)
            replica.lease.read_result(flight.answer, now)
        else:
            assert not isinstance(flight.answer, Versioned)
            replica.lease.write_result(flight.answer, flight.sent_at, now)
    elif not answered and world.real >= flight.sent + CLIENT_TIMEOUT:
        if isinstance(flight.step, Read):
            replica.lease.read_failed(now)
        else:
            replica.lease.write_unknown(now)
    else:
        return
    replica.flight = None


def send(replica: Replica, world: World, step: Read | Create | Replace, now: float, data: st.DataObject) -> None:
    """Put a request on the wire with a fate hypothesis chooses."""
    fate = data.draw(FATES)
    delay = data.draw(st.floats(0, 2 * DURATION) if fate == "late" else st.floats(0, 1.0))
    apply_at = None if fate == "never applied" else world.real + delay
    answer_at = None
    if fate in ("answered", "late") and apply_at is not None:
        answer_at = apply_at + data.draw(st.floats(0, 2.0))
    flight = Flight(step, world.real, now, apply_at, answer_at)
    replica.flight = flight
    world.flights.append(flight)


def act(replica: Replica, world: World, data: st.DataObject, *, fenced: bool) -> None:
    """The replica's turn: its answer if due, a bucket write if it may, then the lease's next step."""
    if world.real < replica.frozen_until:
        return
    now = replica.clock(world.real)
    deliver(replica, world, now)
    if replica.stopping and world.real >= replica.busy_until:
        # Its writes have ended, as the driver's release waits for: settled (the next holder writes
        # at once) when no straggler of its may still apply and its own new-holder wait is over.
        quiet = world.real >= replica.unsettled_until
        replica.lease.want(False, settled=quiet and replica.lease.waited(now, WRITE_TIMEOUT))
        replica.stopping = False
    allowed = replica.lease.may_start_write(now, WRITE_TIMEOUT, MARGIN) if fenced else replica.believed is not None
    allowed = allowed and not replica.stopping
    epoch = replica.lease.epoch if fenced else replica.believed
    share = data.draw(WRITES) if allowed and epoch is not None else None
    if share is not None and epoch is not None:
        length = share * WRITE_TIMEOUT / replica.rate
        world.windows.append(Window(replica.name, epoch, world.real, world.real + length))
        if share == STRAGGLER:  # its client gave up after one write timeout
            replica.busy_until = max(replica.busy_until, world.real + WRITE_TIMEOUT / replica.rate)
            linger = (2 * WRITE_TIMEOUT + MARGIN) / replica.rate
            replica.unsettled_until = max(replica.unsettled_until, world.real + linger)
        else:
            replica.busy_until = max(replica.busy_until, world.real + length)
    if replica.flight is None:
        unix = EPOCH_UNIX if replica.wall_stuck else EPOCH_UNIX + int(world.real)
        step = replica.lease.next(now, unix)
        if isinstance(step, Wait):
            replica.wake = (step.until - replica.offset) / replica.rate
        else:
            send(replica, world, step, now, data)
    replica.believed = replica.lease.epoch


def simulate(data: st.DataObject, *, fenced: bool) -> World:
    world = World()
    for index, (offset, rate, stuck) in enumerate(data.draw(replicas())):
        name = f"replica-{index}"
        world.replicas.append(Replica(name, Lease(KEY, name, DURATION, instance=f"i-{index}"), offset, rate, stuck))
    for _ in range(STEPS):
        world.real = advance(world, data)
        world.apply_due()
        disturb(world, data)
        for replica in data.draw(st.permutations(world.replicas)):
            act(replica, world, data, fenced=fenced)
    check(world)
    return world


def advance(world: World, data: st.DataObject) -> float:
    """The next moment anything happens: a little or a lot later, or just at (or after) the next time a
    replica wakes, a request reaches the store or is answered, a client gives up or a pause ends."""
    how = data.draw(st.sampled_from(["next event"] * 3 + ["a little", "a little", "a lot"]))
    if how == "a little":
        return world.real + data.draw(st.floats(0, 3.0))
    if how == "a lot":
        return world.real + data.draw(st.floats(0, DURATION))
    times = [r.wake for r in world.replicas] + [r.frozen_until for r in world.replicas]
    for replica in world.replicas:
        if replica.flight is not None:
            flight = replica.flight
            times += [flight.sent + CLIENT_TIMEOUT, flight.apply_at or 0.0, flight.answer_at or 0.0]
    later = [t for t in times if t > world.real]
    return (min(later) if later else world.real) + data.draw(st.sampled_from([0.0, 1e-6, 0.01, 0.5]))


def disturb(world: World, data: st.DataObject) -> None:
    """Now and then: freeze a replica (often the holder) for up to three durations, make the holder
    release the lease (settled once its writes have ended, as the driver's is, or not settled in the
    middle of one), or a replica want it again."""
    events = ["none"] * 8 + ["pause", "pause the holder", "release", "release mid-write", "want"]
    event = data.draw(st.sampled_from(events))
    holders = [r for r in world.replicas if r.lease.epoch is not None]
    idle = [r for r in world.replicas if not r.lease.wanted]
    candidates = {
        "pause": world.replicas,
        "pause the holder": holders,
        "release": holders,
        "release mid-write": holders,
        "want": idle,
    }
    if event == "none" or not candidates[event]:
        return
    replica = data.draw(st.sampled_from(candidates[event]))
    if event.startswith("pause"):
        replica.frozen_until = world.real + data.draw(st.floats(0, 3 * DURATION))
    elif event == "want":
        replica.lease.want(True)
    elif event == "release mid-write" and world.real >= replica.frozen_until:
        replica.lease.want(False)  # a shutdown that cut a write: not settled, the next holder waits
    else:
        replica.stopping = True  # no new write; released once its writes have ended (act)


def check(world: World) -> None:
    windows = sorted(world.windows, key=lambda w: (w.start, w.end))
    for i, a in enumerate(windows):
        for b in windows[i + 1 :]:
            if a.epoch != b.epoch:
                assert a.end <= b.start, f"write windows of epochs {a.epoch} and {b.epoch} overlap: {a} {b}"
                assert a.epoch < b.epoch, f"the epoch went back from {a.epoch} to {b.epoch}: {a} {b}"
    holders: dict[int, str] = {}
    for window in windows:
        assert holders.setdefault(window.epoch, window.replica) == window.replica, f"two writers in {window.epoch}"
    bodies = [decode(data) for data in world.store.written]
    epochs = [body.epoch for body in bodies if body is not None]
    assert len(epochs) == len(bodies), "the lease was written with a body that cannot be read"
    assert epochs == sorted(epochs), f"the lease's epochs went back: {epochs}"
    assert len(set(world.store.written)) == len(world.store.written), "a body was written twice (same ETag)"


@PROPERTY
@given(st.data())
def test_no_two_epochs_write_at_once_in_any_interleaving(data: st.DataObject) -> None:
    simulate(data, fenced=True)


def test_the_invariant_breaks_when_a_replica_writes_without_asking_may_start_write() -> None:
    @settings(PROPERTY, max_examples=400, phases=[Phase.generate])
    @given(st.data())
    def unfenced(data: st.DataObject) -> None:
        simulate(data, fenced=False)

    with pytest.raises(AssertionError, match=r"overlap|went back|two writers"):
        unfenced()
