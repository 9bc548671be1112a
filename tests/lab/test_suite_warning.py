"""A second suite on the same account in one process is warned about, naming the first; none after it closed."""

from __future__ import annotations

import logging

from suites import open_suite


async def test_a_second_suite_on_one_account_warns(sim, caplog) -> None:
    async with open_suite(sim, ["MNQ"], timeframes=["1min"]) as first:
        with caplog.at_level(logging.WARNING, logger="pxkit.suite"):
            async with open_suite(sim, ["ES"], timeframes=["1min"]):
                pass
        said = [r.getMessage() for r in caplog.records if "another suite" in r.getMessage()]
        assert len(said) == 1 and "MNQ" in said[0] and str(first.account.id) in said[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pxkit.suite"):
        async with open_suite(sim, ["ES"], timeframes=["1min"]):
            pass
    assert not [r for r in caplog.records if "another suite" in r.getMessage()]
