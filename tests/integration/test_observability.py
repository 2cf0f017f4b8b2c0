"""Worker metrics (``--metrics-port``) and JSON logs (``--log-format json``), scraped and
parsed while real calls go through a real worker (docs/operations.md)."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid

import pytest
from diracmq.client import metrics as client_metrics
from diracmq.client.base import Client
from diracmq.client.context import call_context, new_traceparent
from diracmq_testing import environment, free_closed_port, pack, url_user, wait_until
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.timeout(120)

EXPORTED = {"echoArgs", "failWithErrno", "boom", "single"}
REQUEST_FIELDS = ("message_id", "correlation_id", "service", "method", "caller", "group",
                  "duration", "outcome")


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample of the endpoint: {(name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, lab), v in samples.items()
               if n == name and all(dict(lab).get(k) == w for k, w in labels.items()))


@pytest.fixture
def observed(workers):
    """A worker serving metrics and JSON logs: (worker, port, service)."""
    port = free_closed_port()
    worker = workers.start(args=["--metrics-port", str(port), "--metrics-addr", "127.0.0.1",
                                 "--log-format", "json"])
    return worker, port, f"{worker.system}/Dispatch"


def test_metrics_follow_the_calls(observed, settings, raw):
    worker, port, service = observed
    client = Client(url=service, settings=settings, timeout=20)
    before = scrape(port)
    assert value(before, "rpc_server_call_duration_seconds_count") == 0
    for n in range(3):
        assert client.echoArgs(n)["OK"]
    assert client.failWithErrno()["Errno"] == 1004          # EVALUE
    assert not client.boom()["OK"]                          # an exception: ERROR
    unknown = "nosuch" + uuid.uuid4().hex                   # a name from the wire
    assert not client.executeRPC(unknown)["OK"]
    raw.request(service, b"\xc1 not msgpack")               # undecodable
    duplicate = uuid.uuid4().hex
    for _ in range(2):                                      # the second: from the cache
        raw.call(service, "echoArgs", 1, corr_id=duplicate)
    raw.publish(service, pack({"v": 1, "method": "echoArgs", "args": []}),
                headers={"x-deadline": int(time.time() * 1000) - 60_000})  # expired

    system, name = service.split("/")
    common = {"system": system, "service": name}

    def moved() -> dict:
        now = scrape(port)
        # the expired request is counted before it leaves the in-flight gauge
        return now if value(now, "dirac_worker_requests_expired_total") == 1 \
            and value(now, "dirac_worker_calls_in_flight") == 0 else {}

    after = wait_until(moved, 20, "the expired request to be counted")
    count = "rpc_server_call_duration_seconds_count"
    assert value(after, count, method="echoArgs", outcome="OK", **common) == 4
    assert value(after, count, method="failWithErrno", outcome="EVALUE", **common) == 1
    assert value(after, count, method="boom", outcome="ERROR", **common) == 1
    assert value(after, count, method="_unknown", outcome="ERROR", **common) == 1
    assert value(after, "dirac_worker_requests_undecodable_total") == 1
    assert value(after, "dirac_worker_requests_duplicated_total") == 1
    assert value(after, "dirac_worker_handler_threads") == 15
    assert value(after, "dirac_worker_reply_cache_bytes") > 0
    assert value(after, "rpc_server_call_duration_seconds_sum", method="echoArgs") > 0
    # No label takes a value from the wire: methods are exported names, never the
    # unknown one, a message id or a user.
    methods = {dict(lab).get("method") for (_n, lab), _v in after.items()} - {None}
    assert methods <= EXPORTED | {"_unknown"}, methods
    text = repr(after)
    assert unknown not in text and duplicate not in text and "guest" not in text


def test_json_logs_carry_each_requests_context(observed, settings, raw):
    worker, _port, service = observed
    client = Client(url=service, settings=settings, timeout=20)
    traceparent = new_traceparent()
    with call_context(traceparent=traceparent):
        assert client.echoArgs("traced")["OK"]
    assert client.failWithErrno()["Errno"] == 1004
    raw_trace = new_traceparent()
    raw.call(service, "single", 5, headers={"traceparent": raw_trace}, user_id=raw.user)
    raw.call(service, "single", 6, headers={"traceparent": "not-a-trace"},  # ignored
             user_id=raw.user)
    assert not client.boom()["OK"]          # the handler raises: an ERROR line with a traceback
    worker.wait_for_lines("request served", count=5, timeout=20)
    worker.stop()
    records = [json.loads(line) for line in worker.lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    served = [r for r in records if r["message"].startswith("request served")]
    assert len(served) == 5
    raised = [r for r in records if r["level"] == "ERROR"]
    assert len(raised) == 1 and "boom" in raised[0]["message"] and "exc_info" in raised[0]
    assert {f: raised[0][f] for f in ("service", "method", "caller", "group")} == {
        "service": service, "method": "boom", "caller": url_user(settings.url), "group": ""}
    assert raised[0]["message_id"] and raised[0]["correlation_id"]
    for record in served:
        missing = [f for f in REQUEST_FIELDS if f not in record]
        assert not missing, (missing, record)
        assert record["service"] == service and record["caller"] == url_user(settings.url)
        assert record["duration"] >= 0
    by_method = {r["method"]: r for r in served if r["method"] not in ("single", "boom")}
    assert by_method["echoArgs"]["outcome"] == "OK"
    assert by_method["echoArgs"]["traceparent"] == traceparent
    assert by_method["echoArgs"]["trace_id"] == traceparent.split("-")[1]
    assert by_method["failWithErrno"]["outcome"] == "EVALUE"
    assert "trace_id" not in by_method["failWithErrno"]
    singles = [r for r in served if r["method"] == "single"]
    assert [r.get("trace_id") for r in singles] == [raw_trace.split("-")[1], None]


def test_client_metrics(workers, settings):
    worker = workers.start()
    client = Client(url=f"{worker.system}/Dispatch", settings=settings, timeout=20)
    client_metrics.enable()
    from prometheus_client import REGISTRY

    def count(outcome: str) -> float:
        return REGISTRY.get_sample_value(
            "rpc_client_call_duration_seconds_count",
            {"service": f"{worker.system}/Dispatch", "method": "failWithErrno",
             "outcome": outcome}) or 0.0

    assert count("EVALUE") == 0
    for _ in range(2):
        client.failWithErrno()
    assert count("EVALUE") == 2


def test_a_bad_metrics_port_is_a_usage_error(workers):
    worker = workers.start(args=["--metrics-port", "70000"], wait_ready=False)
    assert worker.wait() == 2
    worker.expected_returncode = 2


def test_log_format_from_the_config_file(workers, tmp_path):
    config = tmp_path / "dirac.toml"
    config.write_text('[worker]\nlog_format = "json"\n')
    with environment(DIRAC_CONFIG_FILE=str(config), DIRAC_LOG_FORMAT=None):
        worker = workers.start()
    ready = [json.loads(line) for line in worker.lines if "worker ready" in line]
    assert ready and ready[0]["level"] == "INFO"
