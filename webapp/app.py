"""``dirac-webapp``: DIRAC's job monitor and a services page, as a Starlette application.

The application is only a DIRAC client of the services: every page and every action
is a call of ``WorkloadManagement/JobMonitoring`` or ``JobManager`` made with the
web application's own broker user, *on behalf of* the logged-in user
(``x-dirac-delegated-user``, client/context.py).  The services honour that only when
the Registry gives the web application's broker user the ``TrustedHost`` property
(workers/identity.py), and then apply the logged-in user's rights: the job table is
``getJobPageSummaryWeb`` (restricted to what that user may see), kill/delete/
reschedule are JobManager's (refused for other users' jobs).

Login: a broker user name and password, checked by logging in to the broker with
them (one AMQP handshake); the session cookie (signed, itsdangerous) then holds the
user name only.  Or, when ``dirac-webapp`` serves HTTPS with ``--client-ca``, a
browser certificate signed by that CA (webapp/tlsserver.py): the web application asks a
service ``whoami`` on behalf of the certificate's subject DN (RFC 4514, as the broker
names certificate users) and the service's Registry maps that DN to the DIRAC user; an
unknown DN is refused there, and the browser gets a refusal page and no session.  The
session then holds the DN (the name the web application delegates with) and the
DIRAC user name (what the page shows).

Pages: ``/`` job monitor (table paged, sorted and filtered on the server, bulk
actions, charts, refreshed every few seconds by polling ``/api/jobs``), ``/jobs/{id}``
(JDL, attributes, parameters, status history, output sandbox download from
``/jobs/{id}/output-sandbox``: streamed from ``WorkloadManagement/SandboxStore`` chunk by
chunk, on behalf of the logged-in user, so the store decides who may read it),
``/services`` (queue depth, consumers, ping time, and requests and errors: summed over
the workers' metrics endpoints when ``--worker-metrics`` names them, else those of the
worker process that answered the ping).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pika
import pika.exceptions
from diracmq.broker import topology
from diracmq.broker.config import Settings
from diracmq.broker.connection import BrokerUnreachable, close_quietly, connect
from diracmq.broker.derrno import ENOAUTH
from diracmq.client.base import Client
from diracmq.client.context import call_context
from diracmq.webapp.tlsserver import client_subject
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

__all__ = ["COLUMNS", "DEFAULT_SERVICES", "WebSettings", "create_app"]

log = logging.getLogger(__name__)
HERE = Path(__file__).parent

#: The job table's columns, as DIRAC's job monitor shows them.
COLUMNS = ["JobID", "Status", "MinorStatus", "ApplicationStatus", "Site", "JobName", "Owner",
           "OwnerGroup", "JobGroup", "SubmissionTime", "LastUpdateTime"]
#: Attributes the table filters by with a multi-select of the values that exist.
FILTERS = ["Status", "MinorStatus", "ApplicationStatus", "Site", "JobName", "Owner",
           "OwnerGroup", "JobGroup"]
#: Services shown on /services unless ``--service`` names others.
DEFAULT_SERVICES = ["WorkloadManagement/JobMonitoring", "WorkloadManagement/JobManager",
                    "WorkloadManagement/JobStateUpdate", "Configuration/Server"]
ACTIONS = {"kill": "killJob", "delete": "deleteJob", "reschedule": "rescheduleJob"}
MAX_PAGE = 500
MAX_VALUES = 200  # values one filter may select (a bound on the query the service builds)
#: Sandbox download: bytes asked of the SandboxStore per call, and calls in flight at
#: once.  A download holds at most SANDBOX_WINDOW * SANDBOX_CHUNK bytes, whatever its size.
SANDBOX_CHUNK = 1 << 20
SANDBOX_WINDOW = 4


class WebSettings:
    """What ``dirac-webapp`` is configured with."""

    def __init__(self, broker: Settings, *, secret_key: str | None = None,
                 services: list[str] | None = None, refresh_seconds: float = 3.0,
                 call_timeout: float = 30.0, worker_metrics: list[str] | None = None,
                 https: bool = False) -> None:
        self.broker = broker
        #: Signs the session cookie; a random one (sessions end at restart) by default.
        self.secret_key = secret_key or secrets.token_urlsafe(32)
        self.services = services or list(DEFAULT_SERVICES)
        self.refresh_seconds = refresh_seconds
        self.call_timeout = call_timeout
        #: Workers' metrics endpoints (``dirac-worker --metrics-port``): when given, the
        #: services page counts requests and errors over all of them.
        self.worker_metrics = worker_metrics or []
        #: Served over HTTPS: the session cookie is then marked Secure.
        self.https = https


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat(timespec="seconds")
    return value


def _display(value: Any) -> Any:
    """A value as a page shows it: datetimes as ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def _url_for_user(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Services:
    """What the web application asks of the services, for one logged-in user at a time."""

    def __init__(self, config: WebSettings) -> None:
        self.config = config
        self.monitoring = Client(url="WorkloadManagement/JobMonitoring",
                                 settings=config.broker, timeout=config.call_timeout)
        self.manager = Client(url="WorkloadManagement/JobManager", settings=config.broker,
                              timeout=config.call_timeout)
        self.sandboxes = Client(url="WorkloadManagement/SandboxStore", settings=config.broker,
                                timeout=config.call_timeout)
        self._rates: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def as_user(self, user: str, client: Client, method: str, *args: Any,
                timeout: float | None = None) -> dict:
        """Call ``method`` on behalf of ``user`` (the services check the delegation)."""
        with call_context(on_behalf_of=user):
            return client.executeRPC(method, *args, timeout=timeout)

    def output_sandboxes(self, user: str, job_id: int, timeout: float | None = None) -> dict:
        """``S_OK([sandbox names])``: the job's output sandboxes, if the store lets ``user``
        see them (it refuses, ``ENOAUTH``, a job the user may not manage)."""
        result = self.as_user(user, self.sandboxes, "getSandboxesAssignedToEntity",
                              f"Job:{int(job_id)}", timeout=timeout)
        if result.get("OK"):
            return {"OK": True, "Value": list((result["Value"] or {}).get("Output") or [])}
        return result

    def stream_sandbox(self, user: str, name: str, size: int, sha256: str) -> Iterator[bytes]:
        """The sandbox's bytes, read on behalf of ``user``: at most SANDBOX_WINDOW chunk
        calls in flight, the sha256 checked at the end.  A failing call or a wrong
        checksum raises, which cuts the HTTP response short (the browser reports a failed
        download instead of keeping a truncated file as good)."""
        digest = hashlib.sha256()
        pending: deque = deque()
        next_offset = 0
        while next_offset < size or pending:
            while next_offset < size and len(pending) < SANDBOX_WINDOW:
                with call_context(on_behalf_of=user):
                    pending.append(self.sandboxes.submit("downloadChunk", name, next_offset,
                                                         SANDBOX_CHUNK))
                next_offset += SANDBOX_CHUNK
            result = pending.popleft().result()
            if not result.get("OK"):
                raise RuntimeError(f"sandbox {name}: {result.get('Message')}")
            data = result["Value"]
            digest.update(data)
            yield data
        if digest.hexdigest() != sha256:
            raise RuntimeError(f"sandbox {name}: checksum mismatch")

    def check_login(self, user: str, password: str) -> str | None:
        """None if the broker accepts ``user``/``password``, else why not."""
        if not user or not password or len(user) > 255 or len(password) > 1024:
            return "user name and password are required"
        settings = Settings(url=_url_for_user(self.config.broker.url, user, password),
                            connect_timeout=5.0)
        try:
            close_quietly(connect(settings, "dirac-webapp login check", timeout=5.0))
        except BrokerUnreachable as exc:
            if "refused user" in str(exc):
                return "wrong user name or password"
            return f"the broker does not answer ({exc})"
        except (ValueError, pika.exceptions.AMQPError) as exc:
            return f"cannot check the login: {exc}"
        return None

    def certificate_user(self, subject: str) -> tuple[str | None, str]:
        """(DIRAC user name, "") for a certificate subject the Registry knows, else (None, why).

        The service decides, not the web application: ``whoami`` on behalf of the
        subject succeeds only if the web application is a TrustedHost and the Registry
        has a user with that ``DN``.
        """
        result = self.as_user(subject, self.monitoring, "whoami", timeout=10)
        if not result.get("OK"):
            return None, str(result.get("Message", "refused"))
        name = (result.get("Value") or {}).get("username")
        if not isinstance(name, str) or not name:
            return None, "the service did not name a user"
        return name, ""

    def service_status(self) -> list[dict[str, Any]]:
        """Queue depth and consumers (AMQP passive declares) and a ping of each service."""
        rows = []
        try:
            conn = connect(self.config.broker, "dirac-webapp services", timeout=5.0)
        except BrokerUnreachable as exc:
            return [{"service": s, "error": str(exc)} for s in self.config.services]
        try:
            for service in self.config.services:
                row: dict[str, Any] = {"service": service}
                try:
                    channel = conn.channel()
                    declared = channel.queue_declare(topology.service_queue_name(service),
                                                     passive=True)
                    row["messages"] = declared.method.message_count
                    row["consumers"] = declared.method.consumer_count
                    close_quietly(channel)
                except pika.exceptions.ChannelClosedByBroker:
                    row["messages"] = row["consumers"] = None
                    row["error"] = "no queue: no worker has served it on this broker"
                rows.append(row)
        finally:
            close_quietly(conn)
        for row in rows:
            if row.get("consumers"):
                self._ping(row)
        if self.config.worker_metrics:
            self._from_metrics(rows)
        return rows

    def _from_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Requests and errors per service summed over the workers' metrics endpoints."""
        from prometheus_client.parser import text_string_to_metric_families

        totals: dict[str, list[float]] = {}
        answered = 0
        for url in self.config.worker_metrics:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    text = response.read(16 * 2**20).decode("utf-8", "replace")
                families = list(text_string_to_metric_families(text))
            except (OSError, ValueError) as exc:
                log.warning("cannot read worker metrics at %s: %s", url, exc)
                continue
            answered += 1
            for family in families:
                if family.name != "rpc_server_call_duration_seconds":
                    continue
                for sample in family.samples:
                    if sample.name.endswith("_count"):
                        labels = sample.labels
                        key = f"{labels.get('system')}/{labels.get('service')}"
                        total = totals.setdefault(key, [0.0, 0.0])
                        total[0] += sample.value
                        if labels.get("outcome") != "OK":
                            total[1] += sample.value
        now = time.monotonic()
        for row in rows:
            if row.get("consumers") is None:
                continue  # no queue: nothing served it
            requests, errors = totals.get(row["service"], [0.0, 0.0])
            row.update(requests=int(requests), errors=int(errors),
                       counted_by=f"metrics of {answered}/{len(self.config.worker_metrics)} "
                                  f"worker endpoint(s)")
            row.pop("rate", None)
            key = "metrics:" + row["service"]
            with self._lock:
                previous = self._rates.get(key)
                self._rates[key] = (now, row["requests"])
            if previous is not None and now > previous[0]:
                row["rate"] = round((row["requests"] - previous[1]) / (now - previous[0]), 2)

    def _ping(self, row: dict[str, Any]) -> None:
        started = time.monotonic()
        result = Client(url=row["service"], settings=self.config.broker).ping(timeout=5)
        row["ping_ms"] = round((time.monotonic() - started) * 1000, 1)
        if not result.get("OK"):
            row["error"] = result.get("Message")
            return
        info = result["Value"]
        counters = info.get("counters") or {}
        row.update(host=info.get("hostname"), pid=info.get("pid"),
                   uptime=info.get("service uptime"), requests=counters.get("requests", 0),
                   errors=counters.get("errors", 0),
                   counted_by=f"{info.get('hostname')} pid {info.get('pid')} (one process)")
        key = f"{row['service']}@{row['host']}:{row['pid']}"
        now = time.monotonic()
        with self._lock:
            previous = self._rates.get(key)
            self._rates[key] = (now, row["requests"])
        if previous is not None and now > previous[0]:
            row["rate"] = round((row["requests"] - previous[1]) / (now - previous[0]), 2)


def _user(request: Request) -> str:
    user = request.session.get("user")
    if not user:
        raise HTTPException(401, "log in first")
    return user


def _selection(request: Request) -> tuple[dict[str, Any], list]:
    """The selectDict and sortList of a job-table query (``/api/jobs?...``)."""
    query = request.query_params
    select: dict[str, Any] = {}
    for name in FILTERS:
        values = [v for v in query.getlist(name) if v]
        if len(values) > MAX_VALUES:
            raise HTTPException(400, f"{name}: at most {MAX_VALUES} values")
        if values:
            select[name] = values
    ids = [part for part in query.get("JobID", "").replace(",", " ").split() if part]
    if ids:
        if not all(part.isdigit() and len(part) < 12 for part in ids):
            raise HTTPException(400, "JobID: positive integers, separated by spaces or commas")
        select["JobID"] = [int(part) for part in ids]
    for key in ("FromDate", "ToDate"):
        value = query.get(key)
        if value:
            try:
                parsed = dt.datetime.fromisoformat(value)
            except ValueError:
                raise HTTPException(400, f"{key}: not an ISO date/time: {value!r}") from None
            select[key] = parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    sort = query.get("sort", "JobID")
    if sort not in COLUMNS:
        raise HTTPException(400, f"cannot sort by {sort!r}")
    direction = query.get("dir", "DESC").upper()
    if direction not in ("ASC", "DESC"):
        raise HTTPException(400, "dir must be ASC or DESC")
    return select, [[sort, direction]]


def _int(request: Request, name: str, default: int, top: int) -> int:
    value = request.query_params.get(name, str(default))
    if not value.isdigit():
        raise HTTPException(400, f"{name} must be a number")
    return min(int(value), top)


def _error(result: dict, status: int = 502) -> JSONResponse:
    return JSONResponse({"error": result.get("Message", "failed"),
                         "errno": result.get("Errno")}, status_code=status)


def create_app(config: WebSettings) -> Starlette:
    """The ASGI application (serve it with uvicorn: ``dirac-webapp`` does)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    services = Services(config)

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
        session = request.session
        return templates.TemplateResponse(request, name, {
            "user": session.get("name") or session.get("user"),
            "refresh": config.refresh_seconds, "certificate": client_subject(request.scope),
            **context}, status_code=status_code)

    async def login_form(request: Request) -> Response:
        """The password form; with a client certificate (and no ``?form``), its login."""
        subject = client_subject(request.scope)
        if subject is None or "form" in request.query_params:
            return page(request, "login.html", error=None)
        from starlette.concurrency import run_in_threadpool

        name, why = await run_in_threadpool(services.certificate_user, subject)
        if name is None:
            log.info("certificate login refused for %r: %s", subject[:256], why)
            request.session.clear()
            return page(request, "certificate_refused.html", status_code=403,
                        subject=subject, why=why)
        request.session.clear()
        request.session.update(user=subject, name=name, login="certificate")
        return RedirectResponse("/", status_code=303)

    async def login(request: Request) -> Response:
        form = await request.form()
        user, password = str(form.get("username", "")), str(form.get("password", ""))
        from starlette.concurrency import run_in_threadpool

        why = await run_in_threadpool(services.check_login, user, password)
        if why is not None:
            log.info("login refused for %r: %s", user[:64], why)
            return page(request, "login.html", error=why)
        request.session.clear()
        request.session["user"] = user
        return RedirectResponse("/", status_code=303)

    def logout(request: Request) -> Response:
        request.session.clear()
        # ``?form``: show the form rather than logging a certificate straight back in.
        return RedirectResponse("/login?form", status_code=303)

    def monitor(request: Request) -> Response:
        if not request.session.get("user"):
            return RedirectResponse("/login", status_code=303)
        return page(request, "jobs.html", columns=COLUMNS, filters=FILTERS)

    def api_jobs(request: Request) -> Response:
        user = _user(request)
        select, sort = _selection(request)
        start = _int(request, "start", 0, 10**9)
        limit = _int(request, "limit", 25, MAX_PAGE)
        result = services.as_user(user, services.monitoring, "getJobPageSummaryWeb",
                                  select, sort, start, limit)
        if not result.get("OK"):
            return _error(result)
        value = result["Value"]
        names = value["ParameterNames"]
        rows = [{name: _json_value(v) for name, v in zip(names, record, strict=False)
                 if name in COLUMNS} for record in value["Records"]]
        return JSONResponse({"rows": rows, "total": value["TotalRecords"],
                             "byStatus": value.get("Extras", {}), "start": start,
                             "limit": limit})

    def api_values(request: Request) -> Response:
        user = _user(request)
        result = services.as_user(user, services.monitoring, "getJobPageCountersWeb", {},
                                  FILTERS)
        if not result.get("OK"):
            return _error(result)
        return JSONResponse({attr: {str(k): n for k, n in counts.items() if k is not None}
                             for attr, counts in result["Value"].items()})

    async def api_action(request: Request) -> Response:
        user = _user(request)
        try:
            body = await request.json()
            action = ACTIONS[body["action"]]
            ids = [int(i) for i in body["ids"]]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "expected {action: kill|delete|reschedule, "
                                          "ids: [job IDs]}"}, status_code=400)
        if not ids or len(ids) > MAX_PAGE:
            return JSONResponse({"error": f"select 1 to {MAX_PAGE} jobs"}, status_code=400)
        from starlette.concurrency import run_in_threadpool

        result = await run_in_threadpool(services.as_user, user, services.manager, action, ids)
        if result.get("OK"):
            return JSONResponse({"ok": True, "done": result["Value"], "failed": {}})
        done = result.get("SuccessfulJobIDs", [])
        failed: dict[str, str] = {}
        for key, why in (("NonauthorizedJobIDs", "not authorized (not your job)"),
                         ("InvalidJobIDs", "invalid or unknown job"),
                         ("FailedJobIDs", "refused by the job state machine")):
            for job_id in result.get(key, []):
                failed[str(job_id)] = why
        if not failed:
            failed = {str(i): result.get("Message", "failed") for i in ids if i not in done}
        return JSONResponse({"ok": False, "done": done, "failed": failed,
                             "message": result.get("Message")})

    def visible(user: str, job_id: int) -> dict:
        """The job's table row if ``user`` may see it in the monitor; 404 otherwise."""
        result = services.as_user(user, services.monitoring, "getJobPageSummaryWeb",
                                  {"JobID": job_id}, None, 0, 1)
        if not result.get("OK"):
            raise HTTPException(502, result.get("Message", "failed"))
        value = result["Value"]
        if not value["Records"]:
            raise HTTPException(404, f"no job {job_id} that you may see")
        return {n: _json_value(v) for n, v in zip(value["ParameterNames"],
                                                   value["Records"][0], strict=False)}

    def job_details(user: str, job_id: int, keys: tuple[str, ...]) -> dict[str, Any]:
        """What the job page shows (``keys`` among attributes, jdl, history, parameters)."""
        methods = {"attributes": "getJobAttributes", "jdl": "getJobJDL",
                   "history": "getJobLoggingInfo", "parameters": "getJobParameters"}
        details: dict[str, Any] = {}
        for key in keys:
            result = services.as_user(user, services.monitoring, methods[key], job_id)
            value = result.get("Value") if result.get("OK") else None
            if key == "attributes":
                value = {k: _display(v) for k, v in (value or {}).items()}
            elif key == "history":
                value = [[_display(v) for v in item] for item in value or []]
            elif key == "parameters":
                value = (value or {}).get(job_id, {})
            details[key] = value
        return details

    def job_page(request: Request) -> Response:
        if not request.session.get("user"):
            return RedirectResponse("/login", status_code=303)
        user = _user(request)
        job_id = request.path_params["job_id"]
        row = visible(user, job_id)
        details = job_details(user, job_id, ("attributes", "jdl", "history", "parameters"))
        return page(request, "job.html", job_id=job_id, row=row,
                    sandbox=sandbox_summary(user, job_id), **details)

    def api_job(request: Request) -> Response:
        """The job's table row, attributes and status history (the job page refreshes)."""
        user = _user(request)
        job_id = request.path_params["job_id"]
        row = visible(user, job_id)
        return JSONResponse({**row, **job_details(user, job_id, ("attributes", "history")),
                             "sandbox": sandbox_summary(user, job_id)})

    def sandbox_summary(user: str, job_id: int) -> dict[str, Any]:
        """What the job page says of the output sandbox: download links, or why none.
        A short timeout: a deployment that serves no SandboxStore must not stall the page."""
        found = services.output_sandboxes(user, job_id, timeout=5)
        if not found.get("OK"):
            return {"links": [], "message": f"Not available: {found.get('Message')}"}
        links = [f"/jobs/{job_id}/output-sandbox" + (f"?n={n}" if n else "")
                 for n in range(len(found["Value"]))]
        return {"links": links,
                "message": "" if links else "None yet: it is uploaded when the job ends."}

    def download_sandbox(request: Request) -> Response:
        """The job's output sandbox (a tar archive), streamed from the SandboxStore.

        Read on behalf of the logged-in user: the store checks that user may read it
        (403 when it refuses); a job the user may not see in the monitor is a 404.
        """
        user = _user(request)
        job_id = request.path_params["job_id"]
        number = _int(request, "n", 0, 10**6)
        visible(user, job_id)
        found = services.output_sandboxes(user, job_id)
        if not found.get("OK"):
            raise HTTPException(403 if found.get("Errno") == ENOAUTH else 502,
                                found.get("Message", "failed"))
        names = found["Value"]
        if number >= len(names):
            raise HTTPException(404, f"job {job_id} has no output sandbox"
                                     + (f" number {number}" if number else ""))
        info = services.as_user(user, services.sandboxes, "getSandboxInfo", names[number])
        if not info.get("OK"):
            raise HTTPException(403 if info.get("Errno") == ENOAUTH else 502,
                                info.get("Message", "failed"))
        size, sha256 = int(info["Value"]["Bytes"]), str(info["Value"]["SHA256"])
        filename = f"job{job_id}-output" + (f"-{number}" if number else "") + ".tar"
        return StreamingResponse(
            services.stream_sandbox(user, names[number], size, sha256),
            media_type="application/x-tar",
            headers={"Content-Disposition": f'attachment; filename="{filename}"',
                     "Content-Length": str(size)})

    def services_page(request: Request) -> Response:
        if not request.session.get("user"):
            return RedirectResponse("/login", status_code=303)
        return page(request, "services.html")

    def api_services(request: Request) -> Response:
        _user(request)
        return JSONResponse({"services": services.service_status()})

    def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    routes = [
        Route("/", monitor),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/jobs/{job_id:int}", job_page),
        Route("/jobs/{job_id:int}/output-sandbox", download_sandbox),
        Route("/services", services_page),
        Route("/api/jobs", api_jobs),
        Route("/api/jobs/values", api_values),
        Route("/api/jobs/action", api_action, methods=["POST"]),
        Route("/api/jobs/{job_id:int}", api_job),
        Route("/api/services", api_services),
        Route("/healthz", healthz),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes, middleware=[
        Middleware(SessionMiddleware, secret_key=config.secret_key, same_site="strict",
                   https_only=config.https, session_cookie="dirac_webapp")])
