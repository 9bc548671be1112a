"""Symbol resolution: CME tickers and contract names to ProjectX contracts, picking the active front month."""

from __future__ import annotations

from ..models import Contract

MONTH_CODES = "FGHJKMNQUVXZ"
# CME ticker -> ProjectX product root, where they differ
PROJECTX_ROOTS = {
    "ES": "EP", "NQ": "ENQ", "GC": "GCE", "SI": "SIE", "HG": "CPE", "PL": "PLE", "CL": "CLE", "MCL": "MCLE",
    "NG": "NGE", "QM": "NQM", "QG": "NQG", "HO": "HOE", "RB": "RBE", "6E": "EU6", "6B": "BP6", "6J": "JY6",
    "ZN": "TYA",
}


def normalise(symbol: str) -> str:
    """Upper-case, without a leading slash (`/nq` -> `NQ`)."""
    return symbol.strip().lstrip("/").upper()


def projectx_root(symbol: str) -> str:
    """The ProjectX product root of a ticker (`ES` -> `EP`, `MNQ` -> `MNQ`)."""
    ticker = normalise(symbol)
    return PROJECTX_ROOTS.get(ticker, ticker)


def is_contract_id(text: str) -> bool:
    return text.strip().upper().startswith("CON.")


def expiry_key(contract: Contract) -> tuple[int, int]:
    """(year, month) of a contract from its id (`CON.F.US.MNQ.H26` -> (2026, 3)); unknown sorts last."""
    code = contract.id.rsplit(".", 1)[-1]
    if len(code) >= 2 and code[0] in MONTH_CODES and code[1:].isdigit():
        return 2000 + int(code[1:]) % 100, MONTH_CODES.index(code[0]) + 1
    return 9999, 12


def pick_contract(symbol: str, candidates: list[Contract]) -> Contract | None:
    """An exact contract-name match, else the active contract of the symbol's root nearest to expiry."""
    wanted = normalise(symbol)
    for contract in candidates:
        if contract.name.upper() == wanted:
            return contract
    root = projectx_root(symbol)
    same_root = [c for c in candidates if c.root == root]
    if not same_root:
        return None
    active = [c for c in same_root if c.active_contract] or same_root
    return min(active, key=expiry_key)
