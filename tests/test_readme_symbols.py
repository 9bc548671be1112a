"""Every instrument the README names resolves on a simulator at the default start (the March 2026 contracts)."""

from __future__ import annotations

import re
from pathlib import Path

from pxkit import ProjectX, ProjectXConfig
from pxkit.sim import SimServer

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
QUARTER = ".H26"  # the active quarter at the default start


def _products() -> list[list[str]]:
    """The README's list of simulated products, each with its aliases: `NQ=ENQ` is one product under two names."""
    listed = README.split("price path per product (", 1)[1].split(", front and next", 1)[0]
    return [name.split("=") for name in re.split(r",\s+", listed)]


def _named() -> set[str]:
    """Tickers quoted in the README's examples (and their `-> ENQ` aliases), contract names like MNQH6 and the full
    contract ids it mentions."""
    quoted = set(re.findall(r'(?:"|-> )([A-Z][A-Z0-9]{1,5})\b', README))  # "NQ" (-> ENQ)
    names = set(re.findall(r"[\"`]([A-Z0-9]{1,4}[FGHJKMNQUVXZ]\d)[\"`]", README))
    ids = set(re.findall(r"CON\.F\.US\.[A-Z0-9]+\.[FGHJKMNQUVXZ]\d\d", README))
    return quoted | names | ids


def test_the_readme_names_what_it_should() -> None:
    named = _named()
    assert {"MNQ", "ES", "MGC", "NQ", "ENQ", "EP", "MNQH6", "CON.F.US.MNQ.H26"} <= named
    assert ["NQ", "ENQ"] in _products() and len(_products()) >= 12


async def test_every_readme_instrument_resolves_at_the_default_start(sim: SimServer) -> None:
    async with ProjectX(ProjectXConfig.for_simulator(sim.base_url)) as px:
        for symbol in sorted(_named()):
            contract = await px.get_instrument(symbol)
            assert contract.id.endswith(QUARTER), (symbol, contract.id)
            assert contract.active_contract, symbol
        for aliases in _products():
            ids = {(await px.get_instrument(name)).id for name in aliases}
            assert len(ids) == 1 and ids.pop().endswith(QUARTER), aliases
        assert (await px.get_instrument("MNQH6")).id == "CON.F.US.MNQ.H26"
