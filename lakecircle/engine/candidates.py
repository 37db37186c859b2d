"""Where a cycle's buckets come from (:class:`~lakecircle.engine.cycle.Cycle`): the account's
listing, a page at a time (a full pass), or a given slice of buckets (continuous verification, an
event, a definition change). Either way a bucket goes to the readers only when a definition names
it (in this account's scope) or a selector's pattern matches it, with the selectors that match."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from anyio.streams.memory import MemoryObjectSendStream

from lakecircle.core.definitions import Definitions
from lakecircle.core.selectors import Match
from lakecircle.engine.fleet import outside_scope
from lakecircle.engine.results import invalid_result
from lakecircle.errors import S3Error
from lakecircle.ports import BucketRef

if TYPE_CHECKING:
    from lakecircle.engine.cycle import Cycle

Candidate = tuple[BucketRef, tuple[Match, ...]]
"""A bucket to read, with the selectors whose patterns match its name."""


class PassWatch(Protocol):
    """Told of a pass's listing as it streams (continuous verification's index and schedule:
    :class:`~lakecircle.engine.verify.Verifier`)."""

    def listed(self, ref: BucketRef) -> None:
        """The account holds ``ref``."""

    def managed(self, ref: BucketRef) -> None:
        """A definition selects ``ref``: the pass reads it (a listing pass would)."""


async def _hand(
    cycle: Cycle, send: MemoryObjectSendStream[Candidate], ref: BucketRef, matches: tuple[Match, ...]
) -> None:
    """A managed bucket of the listing to the readers (a listing pass reads none)."""
    if cycle.owner.watch is not None:
        cycle.owner.watch.managed(ref)
    if cycle.reads:
        await send.send((ref, matches))


async def listed(
    cycle: Cycle, send: MemoryObjectSendStream[Candidate], remaining: set[str], definitions: Definitions
) -> None:
    """The account's buckets a page at a time; those a definition names or a selector's
    pattern matches go to the readers, the others are counted as unmanaged (never read)."""
    watch = cycle.owner.watch
    async with send:
        try:
            async for page in cycle.buckets.iter_buckets():
                if cycle.stopping:
                    break
                cycle.listed += len(page)
                for ref in page:
                    if cycle.stopping:
                        break
                    if watch is not None:
                        watch.listed(ref)
                    name = ref.name
                    matches = cycle.matcher.match(name)  # none outside LCC_BUCKETS
                    if name in remaining:
                        remaining.discard(name)
                        elsewhere = outside_scope(definitions, name, cycle.owner.account)
                        if elsewhere is not None:  # its definition is for other accounts: never written
                            cycle.results.collect(elsewhere)
                        else:
                            await _hand(cycle, send, ref, matches)
                    elif matches and name not in definitions.invalid:
                        await _hand(cycle, send, ref, matches)
                    elif cycle.owner.wanted(name) and name not in definitions.invalid:
                        cycle.results.unmanaged.note(name)
        except S3Error as exc:
            cycle.fatal = f"could not list the account's buckets: {exc}"


async def given(
    cycle: Cycle, send: MemoryObjectSendStream[Candidate], buckets: Sequence[BucketRef], definitions: Definitions
) -> None:
    """The given buckets to the readers, as the listing hands them: those a definition names
    (in this account's scope) or a selector's pattern matches; an invalid one is reported as
    such; the others are no longer managed."""
    async with send:
        for ref in buckets:
            if cycle.stopping:
                break
            name, matches = ref.name, cycle.matcher.match(ref.name)
            if name in definitions.buckets and cycle.owner.wanted(name):
                elsewhere = outside_scope(definitions, name, cycle.owner.account)
                if elsewhere is not None:
                    cycle.results.collect(elsewhere)
                else:
                    await send.send((ref, matches))
            elif name in definitions.invalid and cycle.owner.wanted(name):
                cycle.results.collect(invalid_result(definitions, name))  # its turn, or a change made it so
            elif matches:
                await send.send((ref, matches))
