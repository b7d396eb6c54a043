"""The dashboard: a Telegram Mini App under `/app/`, the web face of the chat's commands.

`/app/` is a page with no plan data in it and a little JavaScript (`templates/app/app.js`).
The script reads the launch parameters Telegram puts in the URL's fragment, sends the raw
`tgWebAppData` with every request (`Authorization: tma <initData>`) and shows the fragments
of HTML the routes under `/app/api/` answer. Each of those checks the launch data
(`handlers.miniapp_auth`), maps the Telegram user to an active member and reads the same
domain operations as the chat (`/status`, `/priority`, `/action`, `/summary`, `/update`),
by the same access rules (`models.access`). Without valid launch data the answer is 401
and holds no plan data; a partner or observer asking for a board view gets 403.

The pages are rendered by the project's Jinja environment for HTML (`Templates.app`),
which escapes every value; nothing is fetched from outside at run time.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from csp_bot.handlers.context import Services
from csp_bot.handlers.miniapp_auth import InitDataRefused, WebAppUser, check_init_data
from csp_bot.handlers.progress import FORECASTS, UPDATE_STATUSES
from csp_bot.handlers.summary import LIST_LIMIT
from csp_bot.models import access
from csp_bot.models.audit import Actor, record_event
from csp_bot.models.case_data import find_case_data
from csp_bot.models.enums import Status
from csp_bot.models.errors import DomainError, NotFound
from csp_bot.models.limits import check_note
from csp_bot.models.measures import (
    FigureView,
    MeasureView,
    UnknownMeasure,
    chart_description,
    find_measure,
    priority_measures,
)
from csp_bot.models.membership import MemberView, get_member
from csp_bot.models.owners import may_update_action
from csp_bot.models.progress import (
    ActionView,
    LoggedUpdate,
    NotPermitted,
    UnknownAction,
    action_updates,
    find_action,
    log_progress,
    priority_actions,
    refusal,
)
from csp_bot.models.summary import BoardSummary
from csp_bot.models.tables import Priority
from csp_bot.models.values import Period

log = logging.getLogger(__name__)

AUTH_SCHEME = "tma"
# The updates an action's page shows; the chat's /history pages through as many.
HISTORY_SHOWN = 2000
# How the action lists sort, as the page's select names them.
SORTS = {"plan": "plan order", "due": "due date", "updated": "last update"}
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
# Only the page's own files run: no inline script, nothing from another origin.
CONTENT_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'"
)
NO_STORE = {"Cache-Control": "no-store"}
# The exceptions view lists this many of each kind (the counts stay whole, /report has them
# all); the other views read the summary as /summary does, and share its cache.
EXCEPTIONS_SHOWN = 50
BOARD_VIEWS = {
    "exceptions": ("Exceptions", "board_exceptions.html"),
    "funding": ("Funding", "board_funding.html"),
    "returns": ("Returns", "board_returns.html"),
}


class Refused(Exception):
    """The request is answered with `status` and a page saying why, and no plan data."""

    def __init__(self, status: int, template: str, **values: Any) -> None:
        super().__init__(template)
        self.status = status
        self.template = template
        self.values = values


@dataclass(frozen=True)
class Viewer:
    """The member a request comes from, and the moment it is answered at."""

    member: MemberView
    now: datetime

    @property
    def board(self) -> bool:
        return self.member.role in access.BOARD


Page = Callable[[Request, Viewer], Awaitable[Response]]


class Dashboard:
    """The dashboard's routes over the bot's services."""

    def __init__(self, services: Services, *, bot_token: str) -> None:
        self.services = services
        self.bot_token = bot_token
        self.templates = services.templates
        self.options = services.settings

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/app", lambda request: RedirectResponse("/app/", 308), methods=["GET"]),
            Route("/app/", self.shell, methods=["GET"]),
            Route("/app/{name:str}", self.asset, methods=["GET"]),
            Route("/app/api/overview", self.signed(self.overview), methods=["GET"]),
            Route("/app/api/priority/{code:str}", self.signed(self.priority), methods=["GET"]),
            Route("/app/api/action/{ref:str}", self.signed(self.action), methods=["GET"]),
            Route(
                "/app/api/action/{ref:str}/update",
                self.signed(self.update),
                methods=["GET", "POST"],
            ),
            Route("/app/api/measure/{code:str}", self.signed(self.measure), methods=["GET"]),
            Route("/app/api/board/{view:str}", self.signed(self.board), methods=["GET"]),
        ]

    # --- the page and its files ---------------------------------------------------------

    async def shell(self, request: Request) -> Response:
        """The page Telegram opens: no plan data, only what fetches it."""
        headers = {"Content-Security-Policy": CONTENT_POLICY, **NO_STORE}
        return HTMLResponse(self.templates.page("shell.html"), headers=headers)

    async def asset(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return HTMLResponse("Not found", 404)
        return Response(_asset(name), media_type=ASSETS[name])

    # --- who is asking --------------------------------------------------------------------

    def signed(self, page: Page) -> Callable[[Request], Awaitable[Response]]:
        """`page` for a member signed in by Telegram's launch data; 401, 403 or 404 with a
        page saying why otherwise."""

        async def answer(request: Request) -> Response:
            try:
                viewer = await self.viewer(request)
                return await page(request, viewer)
            except Refused as refused:
                body = self.templates.page(refused.template, **refused.values)
                return HTMLResponse(body, refused.status, headers=NO_STORE)

        return answer

    async def viewer(self, request: Request) -> Viewer:
        now = self.services.clock().astimezone(self.options.tz)
        user = self.launch_user(request, now)
        member = await self.services.db.run(get_member, telegram_id=user.telegram_id)
        if member is None:
            raise Refused(401, "refused_stranger.html")
        return Viewer(member, now)

    def launch_user(self, request: Request, now: datetime) -> WebAppUser:
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        try:
            if scheme.lower() != AUTH_SCHEME:
                raise InitDataRefused("no launch data")
            return check_init_data(
                raw.strip(), bot_token=self.bot_token, now=now, max_age=self.options.app_max_age
            )
        except InitDataRefused as refused:
            log.info("dashboard request refused: %s", refused)
            raise Refused(401, "refused_launch.html") from None

    def respond(self, template: str, viewer: Viewer, **values: Any) -> Response:
        body = self.templates.page(
            template, me=viewer.member, board=viewer.board, now=viewer.now, **values
        )
        return HTMLResponse(body, headers=NO_STORE)

    # --- what members see -----------------------------------------------------------------

    async def overview(self, request: Request, viewer: Viewer) -> Response:
        """Each priority's RAG, direction of travel, counts and measures; the next meeting and
        deadline."""
        summary = await self.summary(viewer)
        chart = {
            "title": "Actions by status in each priority",
            "statuses": [status.value for status in CHART_STATUSES],
            "labels": [status.label for status in CHART_STATUSES],
            "bars": [
                {
                    "label": line.status.code,
                    "values": [line.status.counts[status] for status in CHART_STATUSES],
                }
                for line in summary.priorities
            ],
        }
        return self.respond(
            "overview.html",
            viewer,
            s=summary,
            chart=chart,
            measures=PriorityMeasures.grouped(summary.measures),
            quiet_days=self.options.quiet_days,
        )

    async def priority(self, request: Request, viewer: Viewer) -> Response:
        """A priority's actions, filtered and sorted as asked."""
        try:
            priority, views, measures = await self.services.db.run(
                priority_page,
                code=request.path_params["code"],
                at=viewer.now,
                quiet_after=self.options.quiet_after,
            )
        except NotFound as unknown:
            raise Refused(404, "problem.html", problem=str(unknown)) from None
        chosen = ActionFilter.read(request.query_params, views)
        return self.respond(
            "priority.html",
            viewer,
            priority=priority,
            actions=chosen.apply(views),
            total=len(views),
            chosen=chosen,
            organisations=sorted({view.lead_organisation for view in views}),
            statuses=list(Status),
            sorts=SORTS,
            measures=measures,
            quiet_days=self.options.quiet_days,
        )

    async def measure(self, request: Request, viewer: Viewer) -> Response:
        """One measure with the facts /measure gives, its trend chart and the chart's table.
        Every member may see it, as /measure (`access.EVERYONE` in the command table)."""
        try:
            view = await self.services.db.run(find_measure, code=request.path_params["code"])
        except UnknownMeasure as unknown:
            raise Refused(404, "problem.html", problem=str(unknown)) from None
        latest = view.latest
        return self.respond(
            "measure.html",
            viewer,
            measure=view,
            target=None if latest is None else view.target_for(latest.period),
            rows=trend_rows(view),
            chart=trend_chart(view),
        )

    async def action(self, request: Request, viewer: Viewer) -> Response:
        """One action in full with every update."""
        action, updates = await self.read_action(request.path_params["ref"], viewer)
        return self.respond(
            "action.html",
            viewer,
            action=action,
            updates=updates,
            may_update=await self.may_update(viewer, action),
            quiet_days=self.options.quiet_days,
            stored=None,
        )

    async def may_update(self, viewer: Viewer, action: ActionView) -> bool:
        """The rule `/update` applies: by role and organisation, as an owner, or as the
        deputy of an owner who is away."""
        return await self.services.db.run(
            may_update_action,
            member=viewer.member,
            action_id=action.id,
            lead_organisation_id=action.lead_organisation_id,
            at=viewer.now,
        )

    async def read_action(self, ref: str, viewer: Viewer) -> tuple[ActionView, list[Any]]:
        try:
            action = await self.services.db.run(
                find_action, ref=ref, at=viewer.now, quiet_after=self.options.quiet_after
            )
            updates, _ = await self.services.db.run(action_updates, ref=ref, limit=HISTORY_SHOWN)
        except UnknownAction as unknown:
            raise Refused(
                404, "problem.html", problem=f"There is no action {unknown.ref}."
            ) from None
        return action, updates

    async def board(self, request: Request, viewer: Viewer) -> Response:
        """The board's views, the same figures as /summary: exceptions, funding, returns."""
        view = request.path_params["view"]
        if view not in BOARD_VIEWS:
            raise Refused(404, "problem.html", problem="There is no such board view.")
        if not viewer.board:
            raise Refused(403, "refused_board.html", me=viewer.member)
        title, template = BOARD_VIEWS[view]
        summary = await self.summary(
            viewer, shown=EXCEPTIONS_SHOWN if view == "exceptions" else None
        )
        return self.respond(template, viewer, s=summary, title=title)

    async def summary(self, viewer: Viewer, *, shown: int | None = None) -> BoardSummary:
        """The whole plan's summary, from the chat's cache while nothing in it has changed
        (by default the one /summary reads: the first few of each exception list)."""
        return await self.services.db.run(
            self.services.summaries.summary,
            at=viewer.now,
            quiet_after=self.options.quiet_after,
            shown=shown or LIST_LIMIT,
        )

    # --- a partner's update ------------------------------------------------------------

    async def update(self, request: Request, viewer: Viewer) -> Response:
        """The update form (GET), or the form sent (POST): stored as /update stores it."""
        action, _ = await self.read_action(request.path_params["ref"], viewer)
        if not await self.may_update(viewer, action):
            raise Refused(403, "problem.html", problem=refusal(viewer.member, action))
        if request.method == "GET":
            return self.form(viewer, action, UpdateForm(key=new_form_key()), problems={})
        sent = UpdateForm.read(await request.body())
        problems = sent.problems()
        if problems:
            return self.form(viewer, action, sent, problems, status=422)
        kinds = sent.case_data()
        if kinds and sent.confirm != sent.digest():
            return self.form(viewer, action, sent, {}, kinds=kinds, status=422)
        try:
            logged = await self.services.db.run(
                store_update,
                form=sent,
                ref=action.ref,
                member_id=viewer.member.id,
                at=viewer.now,
                quiet_after=self.options.quiet_after,
                case_data=[kind.value for kind in kinds],
            )
        except NotPermitted as refused:
            raise Refused(403, "problem.html", problem=str(refused)) from None
        return await self.stored(request, viewer, logged)

    async def stored(self, request: Request, viewer: Viewer, logged: LoggedUpdate) -> Response:
        action, updates = await self.read_action(logged.action.ref, viewer)
        return self.respond(
            "action.html",
            viewer,
            action=action,
            updates=updates,
            may_update=True,
            quiet_days=self.options.quiet_days,
            stored=logged,
        )

    def form(
        self,
        viewer: Viewer,
        action: ActionView,
        sent: UpdateForm,
        problems: dict[str, str],
        *,
        kinds: list[Any] | None = None,
        status: int = 200,
    ) -> Response:
        response = self.respond(
            "update_form.html",
            viewer,
            action=action,
            form=sent,
            problems=problems,
            kinds=[kind.value for kind in kinds or []],
            statuses=UPDATE_STATUSES,
            forecasts={key: label for key, (label, _) in FORECASTS.items()},
        )
        response.status_code = status
        return response


@dataclass(frozen=True)
class PriorityMeasures:
    """A priority's measures as its overview card shows them, and its latest figure: of
    each measure's latest period, the figure sent last (and the measure it is for)."""

    measures: list[MeasureView]
    latest: tuple[MeasureView, FigureView] | None

    @classmethod
    def grouped(cls, views: list[MeasureView]) -> dict[str, PriorityMeasures]:
        """Per priority code, its measures in plan order."""
        by_code: dict[str, list[MeasureView]] = {}
        for view in views:
            by_code.setdefault(view.priority_code, []).append(view)
        return {code: cls(found, _latest_sent(found)) for code, found in by_code.items()}


def _latest_sent(views: list[MeasureView]) -> tuple[MeasureView, FigureView] | None:
    latest: tuple[MeasureView, FigureView] | None = None
    for view in views:
        figure = view.latest
        if figure is not None and (latest is None or figure.sent_at > latest[1].sent_at):
            latest = (view, figure)
    return latest


@dataclass(frozen=True)
class TrendRow:
    """A row of a measure's table: a period with its figure (if sent) and the target that
    holds for it (if any); or the baseline."""

    period: Period
    figure: FigureView | None
    target: float | None
    baseline: float | None = None


def trend_rows(view: MeasureView) -> list[TrendRow]:
    """The baseline, and every period with a figure or a target of its own, oldest first."""
    periods = {figure.period for figure in view.figures} | {p for p, _ in view.targets}
    rows = [TrendRow(p, view.figure_for(p), view.target_for(p)) for p in periods]
    if view.baseline is not None:
        period, value = view.baseline
        rows.append(TrendRow(period, None, None, baseline=value))
    # The baseline comes before any figure of its own period.
    return sorted(rows, key=lambda row: (row.period.index, row.baseline is None))


def trend_chart(view: MeasureView) -> dict[str, Any]:
    """What app.js draws a measure's trend chart from: the figures, the targets (a step
    line, each holding until the next) and the baseline, each at its period's index."""
    periods = [figure.period for figure in view.figures] + [p for p, _ in view.targets]
    if view.baseline is not None:
        periods.append(view.baseline[0])
    first = min(periods, key=lambda p: p.index) if periods else None
    last = max(periods, key=lambda p: p.index) if periods else None

    def point(period: Period, value: float) -> dict[str, Any]:
        return {
            "at": period.index,
            "period": str(period),
            "value": value,
            "shown": view.show(value),
        }

    return {
        "title": f"{view.code}: figures against the target",
        "description": chart_description(view),
        "periods": []
        if first is None or last is None
        else [
            {"at": index, "period": str(Period(index, first.quarterly))}
            for index in range(first.index, last.index + 1)
        ],
        "figures": [point(figure.period, figure.value) for figure in view.figures],
        "targets": [point(period, value) for period, value in view.targets],
        "baseline": None if view.baseline is None else point(*view.baseline),
    }


# The order the overview's chart stacks statuses in: worst first, as the exceptions list them.
CHART_STATUSES = (Status.RED, Status.AMBER, Status.GREEN, Status.COMPLETE, Status.NOT_STARTED)


@dataclass(frozen=True)
class ActionFilter:
    """What a priority's action list is narrowed to and sorted by (the page's query)."""

    status: str = ""
    organisation: str = ""
    overdue: bool = False
    quiet: bool = False
    sort: str = "plan"

    @classmethod
    def read(cls, query: Any, views: list[ActionView]) -> ActionFilter:
        """The filter the query asks for; a value the page could not have sent is a 400."""
        status, organisation = query.get("status", ""), query.get("org", "")
        sort = query.get("sort", "plan") or "plan"
        if status and status not in {choice.value for choice in Status}:
            raise Refused(400, "problem.html", problem="Choose a status from the list.")
        if organisation and organisation not in {view.lead_organisation for view in views}:
            raise Refused(
                400, "problem.html", problem="No action here is led by that organisation."
            )
        if sort not in SORTS:
            raise Refused(
                400, "problem.html", problem="Sort by plan order, due date or last update."
            )
        return cls(
            status, organisation, query.get("overdue") == "1", query.get("quiet") == "1", sort
        )

    def apply(self, views: list[ActionView]) -> list[ActionView]:
        chosen = [view for view in views if self.keeps(view)]
        if self.sort == "due":
            # Undated actions last, plan order among equals (the sort is stable).
            return sorted(chosen, key=lambda view: view.due_on or date.max)
        if self.sort == "updated":
            # Latest first; an action never updated counts from the status the plan set.
            return sorted(
                chosen, key=lambda view: view.last_update_at or view.status_at, reverse=True
            )
        return chosen

    def keeps(self, view: ActionView) -> bool:
        return (
            (not self.status or view.status == self.status)
            and (not self.organisation or view.lead_organisation == self.organisation)
            and (not self.overdue or view.overdue)
            and (not self.quiet or view.quiet)
        )


@dataclass(frozen=True)
class UpdateForm:
    """The update form's fields as sent, before they are checked."""

    status: str = ""
    note: str = ""
    mitigation: str = ""
    forecast: str = ""
    # The digest of the texts a person chose to store although they look like case data.
    confirm: str = ""
    # Made when the form is shown: the same form sent again stores nothing more.
    key: str = ""

    @classmethod
    def read(cls, body: bytes) -> UpdateForm:
        try:
            fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
        except (UnicodeDecodeError, ValueError):
            fields = {}
        return cls(**{name: fields.get(name, "") for name in cls.__dataclass_fields__})

    @property
    def chosen(self) -> Status | None:
        valid = {status.value: status for status in UPDATE_STATUSES}
        return valid.get(self.status)

    @property
    def needs_mitigation(self) -> bool:
        return self.chosen == Status.RED

    @property
    def needs_forecast(self) -> bool:
        return self.chosen in (Status.AMBER, Status.RED)

    def problems(self) -> dict[str, str]:
        """Each field's problem, in the words /update uses; {} when the form can be stored."""
        problems: dict[str, str] = {}
        if self.chosen is None:
            problems["status"] = "Choose a status: on track, at risk, off track or complete."
        for name, what, needed in (
            ("note", "note", True),
            ("mitigation", "mitigation", self.needs_mitigation),
        ):
            if not needed:
                continue
            try:
                check_note(getattr(self, name), what=what)
            except DomainError as problem:
                problems[name] = str(problem)
        if self.needs_forecast and self.forecast not in FORECASTS:
            problems["forecast"] = "Say whether it will recover by the due date."
        return problems

    def texts(self) -> list[str]:
        """The free texts that would be stored."""
        return [self.note, self.mitigation] if self.needs_mitigation else [self.note]

    def case_data(self) -> list[Any]:
        """The kinds of case data the texts seem to hold, each once, in the guard's order."""
        found = [kind for text in self.texts() for kind in find_case_data(text)]
        return list(dict.fromkeys(found))

    @property
    def form_key(self) -> str | None:
        """The key it was shown with, if it is one the page could have been given."""
        return self.key if FORM_KEY.fullmatch(self.key) else None

    def digest(self) -> str:
        return hashlib.sha256("\0".join(self.texts()).encode()).hexdigest()


def priority_page(
    session: Session, *, code: str, at: datetime, quiet_after: timedelta
) -> tuple[Priority, list[ActionView], list[MeasureView]]:
    """A priority, its actions and its measures with their latest figures, in one read."""
    priority, views = priority_actions(session, code=code, at=at, quiet_after=quiet_after)
    measures = priority_measures(session, priority_id=priority.id, latest_only=True)
    return priority, views, measures


def store_update(
    session: Session,
    *,
    form: UpdateForm,
    ref: str,
    member_id: int,
    at: datetime,
    quiet_after: timedelta,
    case_data: list[str],
) -> LoggedUpdate:
    """Store the form's update through `/update`'s own operation, in one transaction with
    the audit entry of a case-data warning overridden (its kind, never the text)."""
    status = form.chosen
    assert status is not None
    if case_data:
        record_event(
            session,
            actor=Actor.member(member_id),
            at=at,
            entity="case_data_check",
            entity_id=None,
            change="stored anyway",
            detail={"kind": case_data[0], "dialogue": "update", "what": ref, "via": "dashboard"},
        )
    forecast = FORECASTS[form.forecast][1] if form.needs_forecast else None
    return log_progress(
        session,
        ref=ref,
        member_id=member_id,
        status=status,
        note=check_note(form.note),
        mitigation=check_note(form.mitigation, what="mitigation")
        if form.needs_mitigation
        else None,
        forecast=forecast,
        at=at,
        form_key=form.form_key,
        quiet_after=quiet_after,
    )


FORM_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_form_key() -> str:
    return secrets.token_urlsafe(16)


def _asset(name: str) -> bytes:
    return files("csp_bot.handlers").joinpath("templates", "app", name).read_bytes()


def dashboard_routes(services: Services, *, bot_token: str) -> list[BaseRoute]:
    """The dashboard's routes, for the bot's web server."""
    return Dashboard(services, bot_token=bot_token).routes()
