"""`segsync.rendezvous`: concurrent calls' requests joined into one shared pass."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from segsync.rendezvous import Rendezvous


def test_concurrent_calls_share_one_pass_and_get_their_own_answers() -> None:
    passes: list[list[int]] = []

    async def run(requests: Sequence[int]) -> list[int]:
        passes.append(list(requests))
        return [r * 10 for r in requests]

    pool: Rendezvous[int, int] = Rendezvous(run)

    async def call(n: int) -> int:
        ticket = pool.join()
        try:
            await asyncio.sleep(0.001 * n)  # the calls' own work, of different lengths
            return await pool.submit(ticket, n)
        finally:
            pool.leave(ticket)

    async def main() -> list[int]:
        return await asyncio.gather(*(call(n) for n in (1, 2, 3)))

    assert asyncio.run(main()) == [10, 20, 30]
    assert passes == [[1, 2, 3]]


def test_a_call_that_leaves_without_a_request_does_not_hold_up_the_others() -> None:
    passes: list[list[int]] = []

    async def run(requests: Sequence[int]) -> list[int]:
        passes.append(list(requests))
        return list(requests)

    pool: Rendezvous[int, int] = Rendezvous(run)

    async def main() -> int:
        quitter, worker = pool.join(), pool.join()
        pending = asyncio.ensure_future(pool.submit(worker, 7))
        await asyncio.sleep(0)
        assert not pending.done()  # waits for the other call that joined
        pool.leave(quitter)
        return await pending

    assert asyncio.run(main()) == 7
    assert passes == [[7]]


def test_a_failed_pass_reaches_every_caller() -> None:
    async def run(requests: Sequence[int]) -> list[int]:
        raise RuntimeError("platform down")

    pool: Rendezvous[int, int] = Rendezvous(run)

    async def call(n: int) -> int:
        ticket = pool.join()
        try:
            return await pool.submit(ticket, n)
        finally:
            pool.leave(ticket)

    async def main() -> list[int | BaseException]:
        return list(await asyncio.gather(call(1), call(2), return_exceptions=True))

    outcomes = asyncio.run(main())
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    assert [str(o) for o in outcomes] == ["platform down", "platform down"]
