"""The board paper as files: a printable HTML highlight report, the actions CSV, the RAG chart.

All three are drawn from one `models.summary.BoardPaper`; this module only lays it out.
The chart is drawn with matplotlib's object API (no pyplot, so no global state, safe in
a worker thread) on the Agg canvas, so it needs no display.
"""

from __future__ import annotations

import base64
import csv
import ctypes
import ctypes.util
import functools
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from csp_bot.handlers.templating import Templates
from csp_bot.models.enums import Status
from csp_bot.models.summary import ActionLine, BoardPaper, BoardSummary

# GOV.UK colours, the palette UK public-sector RAG reports use; complete is blue (BRAG).
RAG_COLOURS = {
    Status.RED: "#d4351c",
    Status.AMBER: "#f47738",
    Status.GREEN: "#00703c",
    Status.COMPLETE: "#1d70b8",
    Status.NOT_STARTED: "#b1b4b6",
}
# Numbers on these fills are printed dark, as the GOV.UK palette does.
LIGHT_FILLS = frozenset({Status.AMBER, Status.NOT_STARTED})
DARK_TEXT = "#0b0c0c"
CHART_ORDER = (Status.RED, Status.AMBER, Status.GREEN, Status.COMPLETE, Status.NOT_STARTED)
CHART_DPI = 150
CHART_WIDTH = 8.0  # inches: the width of A4 inside its margins
CHART_ROW = 0.3  # inches per priority
CHART_MARGINS = {"left": 0.9, "right": 0.3, "top": 0.45, "bottom": 0.85}  # inches
FORMATS = ("html", "csv", "png")
# What each file is called, before its date: the same in chat and from the command line.
REPORT_FILES = {"html": "board-paper", "csv": "actions", "png": "rag-chart"}
CSV_COLUMNS = (
    "ref",
    "priority",
    "action",
    "lead organisation",
    "owner",
    "due",
    "status",
    "status since",
    "direction since baseline",
    "overdue",
    "no recent update",
    "last update",
    "latest note",
    "mitigation",
    "forecast",
)
# What Excel and other spreadsheets read as the start of a formula (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class PaperFiles:
    """The three files of a board paper, and the local date they are named by."""

    paper: BoardPaper
    day: date
    html: bytes
    csv: bytes
    png: bytes

    def name(self, file_format: str) -> str:
        """The file's name, e.g. `board-paper-2021-10-08.html`."""
        return f"{REPORT_FILES[file_format]}-{self.day.isoformat()}.{file_format}"


def render_paper_files(paper: BoardPaper, templates: Templates) -> PaperFiles:
    """Every file of the board paper (the chart once: the HTML embeds the same picture)."""
    png = rag_chart(paper.summary, templates)
    return PaperFiles(
        paper=paper,
        day=paper.summary.at.astimezone(templates.timezone).date(),
        html=paper_html(paper, templates, chart=png),
        csv=actions_csv(paper, templates.timezone),
        png=png,
    )


def render_format(paper: BoardPaper, templates: Templates, file_format: str) -> bytes:
    """One file of the board paper: `html`, `csv` or `png`."""
    if file_format == "csv":
        return actions_csv(paper, templates.timezone)
    png = rag_chart(paper.summary, templates)
    return png if file_format == "png" else paper_html(paper, templates, chart=png)


def paper_html(paper: BoardPaper, templates: Templates, *, chart: bytes) -> bytes:
    """The highlight report: one self-contained HTML page, laid out for A4 (UTF-8)."""
    picture = "data:image/png;base64," + base64.b64encode(chart).decode("ascii")
    template = templates.paper.get_template("board_paper.html")
    # Written as it is rendered: joining a page of 10,000 actions from its pieces would
    # hold every piece in memory at once.
    out = io.BytesIO()
    for piece in template.generate(paper=paper, s=paper.summary, chart=picture):
        out.write(piece.encode())
    return out.getvalue()


def release_freed_memory() -> None:
    """Hand the memory a paper was made in back to the system (glibc only; elsewhere a no-op).

    The paper is read in the database's worker thread and laid out in another, and glibc
    keeps a pool of freed memory per thread: without this the tens of megabytes a paper
    takes stay resident after it is sent, and the next paper, laid out in yet another
    thread, adds its own.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    return getattr(ctypes.CDLL(name), "malloc_trim", None)


# --- the CSV ---------------------------------------------------------------------------------


def actions_csv(paper: BoardPaper, zone: ZoneInfo) -> bytes:
    """Every action with its latest status, one row each, in plan order.

    Dates are ISO (YYYY-MM-DD) so spreadsheets sort them; the byte order mark lets Excel
    read the file as UTF-8.
    """
    out = io.BytesIO()
    # Encoded as it is written: the whole table as text and then as bytes would be two
    # copies of it at once.
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows([safe_cell(cell) for cell in _csv_row(line, zone)] for line in paper.actions)
    text.detach()  # flushes into `out` and leaves it open
    return out.getvalue()


def _csv_row(line: ActionLine, zone: ZoneInfo) -> list[str]:
    action, latest = line.action, line.latest
    return [
        action.ref,
        action.priority_code,
        action.title,
        action.lead_organisation,
        action.owner or "",
        action.due_on.isoformat() if action.due_on else "",
        action.status.label,
        _local(action.status_at, zone),
        line.direction.value,
        _yes(action.overdue),
        _yes(action.quiet),
        _local(latest.created_at, zone) if latest else "",
        latest.note if latest else "",
        (latest.mitigation or "") if latest else "",
        (latest.forecast or "") if latest else "",
    ]


def safe_cell(value: str) -> str:
    """The cell as text a spreadsheet shows and never runs: a leading single quote (as OWASP
    recommends) turns `=HYPERLINK(...)`, `+1`, `-2`, `@SUM` or a leading tab or CR into text."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _local(moment: datetime, zone: ZoneInfo) -> str:
    return f"{moment.astimezone(zone):%Y-%m-%d %H:%M}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


# --- the chart ---------------------------------------------------------------------------------


def rag_chart(summary: BoardSummary, templates: Templates) -> bytes:
    """A horizontal stacked bar per priority: how many actions are in each status (PNG)."""
    # Imported here: matplotlib takes a while to load, and only the paper needs it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    lines = summary.priorities
    height = CHART_MARGINS["top"] + CHART_MARGINS["bottom"] + CHART_ROW * max(len(lines), 1)
    figure = Figure(figsize=(CHART_WIDTH, height), dpi=CHART_DPI)
    FigureCanvasAgg(figure)
    # Fixed margins rather than a layout engine: measuring every label to lay the figure
    # out costs a second drawing, and the codes and legend need the same room every time.
    figure.subplots_adjust(
        left=CHART_MARGINS["left"] / CHART_WIDTH,
        right=1 - CHART_MARGINS["right"] / CHART_WIDTH,
        top=1 - CHART_MARGINS["top"] / height,
        bottom=CHART_MARGINS["bottom"] / height,
    )
    axes = figure.add_subplot()
    codes = [line.status.code for line in lines]
    left = [0] * len(lines)
    for status in CHART_ORDER:
        counts = [line.status.counts.get(status, 0) for line in lines]
        axes.barh(codes, counts, left=left, color=RAG_COLOURS[status], label=status.label)
        ink = DARK_TEXT if status in LIGHT_FILLS else "white"
        for row, (start, count) in enumerate(zip(left, counts, strict=True)):
            if count:
                axes.text(
                    start + count / 2,
                    row,
                    str(count),
                    ha="center",
                    va="center",
                    color=ink,
                    fontsize=7,
                )
        left = [before + count for before, count in zip(left, counts, strict=True)]
    axes.set_ylim(max(len(lines), 1) - 0.5, -0.5)  # plan order, top to bottom
    axes.margins(x=0)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("actions")
    axes.spines[["top", "right"]].set_visible(False)
    axes.set_title(f"RAG status by priority at {templates.format_when(summary.at)}", fontsize=10)
    figure.legend(loc="lower center", ncols=len(CHART_ORDER), frameon=False, fontsize=8)
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
