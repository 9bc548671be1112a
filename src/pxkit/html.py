"""HTML pieces for notebook output (`_repr_html_`): escaping, a small table, a status badge, signed money.

Stdlib only and cheap to import. Every style is inline and reads JupyterLab's CSS variables with fallbacks, so
the output suits light and dark themes and needs no external CSS, font or image. Any plain `str` handed to these
helpers is escaped; only `Html` (what they return) is inserted as is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

TEXT = "var(--jp-ui-font-color1, #222)"
MUTED = "var(--jp-ui-font-color2, #666)"
SURFACE = "var(--jp-layout-color1, #fff)"
RULE = "var(--jp-border-color2, #ddd)"
GOOD = "var(--jp-success-color1, #2e7d32)"
WARN = "var(--jp-warn-color1, #ef6c00)"
BAD = "var(--jp-error-color1, #c62828)"
BID = "var(--jp-brand-color1, #1565c0)"
TONES = {"ok": GOOD, "live": BID, "warn": WARN, "bad": BAD, "idle": "var(--jp-layout-color4, #757575)"}
FONT = ("font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: var(--jp-ui-font-size1, 13px); "
        "line-height: 1.35;")
_CELL = f"padding: 1px 8px; border: none; border-bottom: 1px solid {RULE}; white-space: nowrap;"
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;"})
DASH = "\u2014"  # what a missing value shows


class Html(str):
    """Markup that is safe to insert as is: built by this module; any other str is escaped."""

    __slots__ = ()


def escape(value: object) -> Html:
    """`value` as text that cannot open a tag or an attribute (None shows as a dash); Html passes unchanged."""
    if isinstance(value, Html):
        return value
    return Html(DASH if value is None else str(value).translate(_ESCAPES))


def span(text: object, style: str) -> Html:
    return Html(f'<span style="{style}">{escape(text)}</span>')


def badge(text: object, tone: str = "idle") -> Html:
    """A small pill: `tone` is ok (green), live (blue), warn (orange), bad (red) or idle (grey)."""
    return span(text, f"display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 0.85em; "
                      f"font-weight: 600; color: #fff; background: {TONES[tone]};")


def muted(text: object) -> Html:
    return span(text, f"color: {MUTED};")


def fixed(value: float | None, decimals: int | None = 2) -> str:
    """A number with `decimals` places (None: as many as it has) and thousands separators; a dash for None."""
    if value is None:
        return DASH
    return f"{value:,}" if decimals is None else f"{value:,.{decimals}f}"


def signed(value: float | None, decimals: int = 2) -> Html:
    """Money with its sign, green above zero and red below (a minus sign, not a hyphen)."""
    if value is None:
        return escape(None)
    if round(value, decimals) == 0:
        return escape(f"{0:.{decimals}f}")
    text = f"{abs(value):,.{decimals}f}"
    return span(f"+{text}" if value > 0 else f"\u2212{text}", f"color: {GOOD if value > 0 else BAD};")


_ALIGN = {"l": "left", "c": "center", "r": "right"}


def table(rows: Iterable[Sequence[object]], header: Sequence[object] = (), *, align: str = "l",
          foot: Sequence[object] = ()) -> Html:
    """A compact table. `align` has one letter (l, c, r) per leading column; the columns after it align right, as
    numbers do. `foot` is a totals row drawn in bold."""

    def row(cells: Sequence[object], tag: str, extra: str = "") -> str:
        return "<tr>" + "".join(
            f'<{tag} style="{_CELL} text-align: {_ALIGN[align[i]] if i < len(align) else "right"};{extra}">'
            f"{escape(c)}</{tag}>" for i, c in enumerate(cells)) + "</tr>"

    parts = [f'<table style="{FONT} border-collapse: collapse; margin: 2px 0; color: {TEXT}; '
             'background: transparent; font-variant-numeric: tabular-nums;">']
    if header:
        parts.append("<thead>" + row(header, "th", f" color: {MUTED}; font-weight: 600;") + "</thead>")
    parts.append("<tbody>" + "".join(row(cells, "td") for cells in rows) + "</tbody>")
    if foot:
        parts.append("<tfoot>" + row(foot, "td", " font-weight: 600;") + "</tfoot>")
    parts.append("</table>")
    return Html("".join(parts))


def facts(pairs: Iterable[tuple[str, object]]) -> Html:
    """One line of `label value` pairs, the labels muted."""
    return Html('<div style="margin: 2px 0;">' + " &nbsp; ".join(
        f"{muted(label)} {escape(value)}" for label, value in pairs) + "</div>")


def panel(title: object, *parts: object, note: object = None) -> Html:
    """The frame of every repr: a bold title (with an optional muted note after it), then the parts."""
    head = f"<b>{escape(title)}</b>" + (f" &nbsp;{muted(note)}" if note is not None else "")
    body = "".join(escape(p) for p in parts)
    return Html(f'<div style="{FONT} color: {TEXT}; background: {SURFACE}; display: inline-block; '
                f'padding: 4px 8px; border: 1px solid {RULE}; border-radius: 4px;">'
                f'<div style="margin-bottom: 2px;">{head}</div>{body}</div>')
