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
import gc
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from csp_bot.handlers.templating import Templates
from csp_bot.models.enums import Status
from csp_bot.models.measures import FigureView, MeasureView, chart_description
from csp_bot.models.summary import ActionLine, BoardPaper, BoardSummary
from csp_bot.models.values import Period

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
    # Every figure of every measure: only when there are figures.
    figures_csv: bytes | None = None

    def name(self, file_format: str) -> str:
        """The file's name, e.g. `board-paper-2021-10-08.html`."""
        return f"{REPORT_FILES[file_format]}-{self.day.isoformat()}.{file_format}"

    @property
    def figures_name(self) -> str:
        return figures_file_name(self.day)


def render_paper_files(paper: BoardPaper, templates: Templates) -> PaperFiles:
    """Every file of the board paper (the chart once: the HTML embeds the same picture)."""
    png = rag_chart(paper.summary, templates)
    return PaperFiles(
        paper=paper,
        day=paper.summary.at.astimezone(templates.timezone).date(),
        html=paper_html(paper, templates, chart=png),
        csv=actions_csv(paper, templates.timezone),
        png=png,
        figures_csv=figures_csv(paper, templates.timezone) if has_figures(paper) else None,
    )


def render_format(paper: BoardPaper, templates: Templates, file_format: str) -> bytes:
    """One file of the board paper: `html`, `csv` or `png`."""
    if file_format == "csv":
        return actions_csv(paper, templates.timezone)
    png = rag_chart(paper.summary, templates)
    return png if file_format == "png" else paper_html(paper, templates, chart=png)


def paper_html(paper: BoardPaper, templates: Templates, *, chart: bytes) -> bytes:
    """The highlight report: one self-contained HTML page, laid out for A4 (UTF-8)."""
    picture = _data_uri(chart)
    template = templates.paper.get_template("board_paper.html")
    performance = paper.summary.measures if has_figures(paper) else []
    charts = MeasureCharts(compact=True) if performance else None
    drawn = {view.code: _data_uri(charts.draw(view)) for view in performance if charts}
    alt = {view.code: chart_description(view) for view in performance}
    # Written as it is rendered: joining a page of 10,000 actions from its pieces would
    # hold every piece in memory at once.
    out = io.BytesIO()
    pieces = template.generate(
        paper=paper,
        s=paper.summary,
        chart=picture,
        performance=performance,
        charts=drawn,
        alt=alt,
    )
    for piece in pieces:
        out.write(piece.encode())
    return out.getvalue()


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def has_figures(paper: BoardPaper) -> bool:
    """Whether any measure has a figure: the paper's Performance section and the figures
    file come only then."""
    return any(view.figures for view in paper.summary.measures)


FIGURE_COLUMNS = (
    "measure",
    "priority",
    "title",
    "unit",
    "period",
    "value",
    "target",
    "rag",
    "note",
    "sent by",
    "sent at",
)


def plain_number(value: float) -> str:
    """A figure as a spreadsheet reads it: `1450`, `72.5`, never `1.45e+03`."""
    return str(int(value)) if value == int(value) else repr(value)


def figures_file_name(day: date) -> str:
    return f"figures-{day.isoformat()}.csv"


def figures_csv(paper: BoardPaper, zone: ZoneInfo) -> bytes:
    """Every live figure of every measure, one row each, by measure then period."""
    return spreadsheet_csv(
        FIGURE_COLUMNS,
        (
            _figure_row(view, figure, zone)
            for view in paper.summary.measures
            for figure in view.figures
        ),
    )


def _figure_row(view: MeasureView, figure: FigureView, zone: ZoneInfo) -> list[str]:
    target = view.target_for(figure.period)
    rag = view.rag(figure)
    return [
        view.code,
        view.priority_code,
        view.title,
        view.unit,
        str(figure.period),
        plain_number(figure.value),
        "" if target is None else plain_number(target),
        "" if rag is None else rag.label,
        figure.note,
        figure.sent_by or "",
        _local(figure.sent_at, zone),
    ]


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
    return spreadsheet_csv(CSV_COLUMNS, (_csv_row(line, zone) for line in paper.actions))


def spreadsheet_csv(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> bytes:
    """A CSV file as spreadsheets read it: a byte order mark (so Excel reads UTF-8), CRLF
    line ends, and no cell that could start a formula."""
    out = io.BytesIO()
    # Encoded as it is written: the whole table as text and then as bytes would be two
    # copies of it at once.
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
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
    # The figure and its canvas refer to each other, so their pixels (about 10 MB for 40
    # priorities) would wait for the garbage collector's next full pass, which a bot that
    # froze its start-up objects rarely makes, while the paper's 6 MB page is laid out
    # beside them at the bot's peak memory: collected here, as the chart is done.
    del figure, axes
    gc.collect()
    return out.getvalue()


# --- measures' trend charts ----------------------------------------------------------------------

MEASURE_CHART_SIZE = (4.0, 2.2)  # inches: small enough for a phone, and two to a paper's row
MEASURE_CHART_DPI = 110
# The paper's charts print 88 mm wide: 90 dots an inch is 360 pixels, sharp enough on paper,
# and a third fewer pixels to draw and compress than the chat's.
PAPER_CHART_DPI = 90
FIGURE_COLOUR, TARGET_COLOUR, BASELINE_COLOUR = "#1d70b8", "#00703c", "#505a5f"


class MeasureCharts:
    """Small trend charts of measures: the figures, the target line and the baseline.

    One matplotlib figure and canvas, and one set of artists on it, serve every chart: each
    chart sets their data, its limits and its few labels. Matplotlib's own axes build and
    measure every tick each time (about 75 ms a chart when cleared, 19 ms reused, against
    6 ms this way), so the axes are drawn here as a frame, three levels and two dates.
    """

    def __init__(self, *, compact: bool = False) -> None:
        """`compact` charts (the paper's) have no legend or title: the page gives the key
        once and names each chart under it."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        dpi = PAPER_CHART_DPI if compact else MEASURE_CHART_DPI
        self.figure = Figure(figsize=MEASURE_CHART_SIZE, dpi=dpi)
        FigureCanvasAgg(self.figure)
        self.figure.subplots_adjust(left=0.14, right=0.97, top=0.86, bottom=0.16)
        axes = self.axes = self.figure.add_subplot()
        axes.set_axis_off()
        self.compact = compact
        self.levels = [axes.axhline(0, color="#dddddd", linewidth=0.6, zorder=0) for _ in range(3)]
        self.level_labels = [
            axes.text(
                -0.02,
                0,
                "",
                transform=axes.get_yaxis_transform(),
                ha="right",
                va="center",
                fontsize=6,
            )
            for _ in range(3)
        ]
        self.date_labels = [
            axes.text(x, -0.04, "", transform=axes.transAxes, ha=align, va="top", fontsize=6)
            for x, align in ((0.0, "left"), (1.0, "right"))
        ]
        axes.plot([0, 1], [0, 0], transform=axes.transAxes, color="#0b0c0c", linewidth=0.8)
        (self.figures,) = axes.plot(
            [], [], marker="o", markersize=3, color=FIGURE_COLOUR, label="figure"
        )
        (self.targets,) = axes.plot(
            [], [], drawstyle="steps-post", linestyle="--", color=TARGET_COLOUR, label="target"
        )
        (self.baseline,) = axes.plot([], [], linestyle=":", color=BASELINE_COLOUR, label="baseline")
        if not compact:
            axes.legend(fontsize=6, frameon=False, loc="best")
        # A title at a fixed height: placing it automatically measures the axes' labels.
        self.title = axes.set_title("", fontsize=8, y=1.0)

    def draw(self, view: MeasureView) -> bytes:
        """The measure's chart as PNG."""
        periods = _chart_periods(view)
        start = periods[0].index if periods else 0
        width = max(len(periods) - 1, 1)
        self.figures.set_data(
            [figure.period.index - start for figure in view.figures],
            [figure.value for figure in view.figures],
        )
        # The last target holds to the end of the chart, as it does for the figures.
        steps = [(period.index - start, value) for period, value in view.targets]
        if steps:
            steps.append((len(periods) - 1, steps[-1][1]))
        self.targets.set_data([x for x, _ in steps], [y for _, y in steps])
        level = [view.baseline[1]] * 2 if view.baseline else []
        self.baseline.set_data([0, width] if level else [], level)
        self.axes.set_xlim(-0.3, width + 0.3)
        self._levels(view)
        first, last = (str(periods[0]), str(periods[-1])) if periods else ("", "")
        self.date_labels[0].set_text(first)
        self.date_labels[1].set_text(last)
        if not self.compact:
            self.title.set_text(f"{view.code} ({view.unit}, {view.better_word} is better)")
        out = io.BytesIO()
        # Light compression: the paper embeds hundreds of these, and zlib's default level
        # costs more than the few bytes it saves on a chart of flat colours.
        self.figure.savefig(out, format="png", pil_kwargs={"compress_level": 1})
        return out.getvalue()

    def _levels(self, view: MeasureView) -> None:
        """The vertical range, and three round levels across it, each labelled."""
        from matplotlib.ticker import MaxNLocator

        values = [figure.value for figure in view.figures] + [v for _, v in view.targets]
        if view.baseline is not None:
            values.append(view.baseline[1])
        low, high = (min(values), max(values)) if values else (0.0, 1.0)
        room = (high - low) * 0.15 or max(abs(high) * 0.1, 1.0)
        bottom, top = max(low - room, 0.0), high + room
        self.axes.set_ylim(bottom, top)
        inside = [t for t in MaxNLocator(nbins=3).tick_values(bottom, top) if bottom <= t <= top]
        ticks: list[float | None] = [*inside[:3], *[None] * (3 - len(inside[:3]))]
        for line, label, tick in zip(self.levels, self.level_labels, ticks, strict=True):
            line.set_visible(tick is not None)
            label.set_visible(tick is not None)
            if tick is not None:
                line.set_ydata([tick, tick])
                label.set_y(tick)
                label.set_text(view.show(tick))


def _chart_periods(view: MeasureView) -> list[Period]:
    """Every period from the earliest shown to the latest: baseline, targets and figures."""
    shown = [figure.period for figure in view.figures] + [period for period, _ in view.targets]
    if view.baseline is not None:
        shown.append(view.baseline[0])
    if not shown:
        return []
    first, last = min(shown), max(shown)
    return [first.shifted(step) for step in range(last.index - first.index + 1)]


def measure_chart(view: MeasureView) -> bytes:
    """One measure's trend chart (PNG)."""
    return MeasureCharts().draw(view)
