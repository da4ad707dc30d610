"""The scheduled stop of the API's overdue Athena queries, on a real boto3 Athena client under botocore's
Stubber (requests and answers checked against Athena's service model). moto cannot serve this: it has no
BatchGetQueryExecution and cannot backdate a submission or hold a query RUNNING."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from dataforge.alerts import to_json_rules
from dataforge.settings import Settings
from devkit.fakes import LambdaContext
from lambdas.alert_evaluator.handler import build_stopper, make_handler
from lambdas.common.alerting import RunResult
from lambdas.common.errors import QueryStopError
from lambdas.common.query_timeouts import PAGE_SIZE, StopResult, stop_overdue_queries

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WORKGROUP = "dataforge-dev-analytics"
CONTEXT = LambdaContext("alert-evaluator")


def qid(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


def execution(n: int, state: str, age_seconds: float) -> dict[str, Any]:
    return {"QueryExecutionId": qid(n), "WorkGroup": WORKGROUP,
            "Status": {"State": state, "SubmissionDateTime": NOW - timedelta(seconds=age_seconds)}}


@pytest.fixture
def athena() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("athena", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def list_page(stubber: Stubber, executions: list[dict[str, Any]], token: str | None = None,
              next_token: str | None = None) -> None:
    request: dict[str, Any] = {"WorkGroup": WORKGROUP, "MaxResults": PAGE_SIZE}
    if token:
        request["NextToken"] = token
    answer: dict[str, Any] = {"QueryExecutionIds": [e["QueryExecutionId"] for e in executions]}
    if next_token:
        answer["NextToken"] = next_token
    stubber.add_response("list_query_executions", answer, request)
    stubber.add_response("batch_get_query_execution", {"QueryExecutions": executions},
                         {"QueryExecutionIds": answer["QueryExecutionIds"]})


def test_only_active_queries_past_the_limit_are_stopped(athena: tuple[Any, Stubber]) -> None:
    client, stubber = athena
    list_page(stubber, [
        execution(1, "RUNNING", 10),  # within the limit
        execution(2, "RUNNING", 61),  # over it
        execution(3, "QUEUED", 300),  # waited past it
        execution(4, "SUCCEEDED", 500),
        execution(5, "FAILED", 500),
    ], next_token="page-2")
    stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": qid(2)})
    stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": qid(3)})
    list_page(stubber, [execution(6, "RUNNING", 900), execution(7, "CANCELLED", 1000)], token="page-2")
    stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": qid(6)})

    result = stop_overdue_queries(client, workgroup=WORKGROUP, timeout_seconds=60, now=NOW)
    assert result == StopResult(checked=7, stopped=(qid(2), qid(3), qid(6)))


def test_listing_stops_at_a_page_older_than_the_lookback(athena: tuple[Any, Stubber]) -> None:
    client, stubber = athena
    list_page(stubber, [execution(1, "SUCCEEDED", 10)], next_token="page-2")
    list_page(stubber, [execution(2, "RUNNING", 7 * 3600), execution(3, "SUCCEEDED", 8 * 3600)], token="page-2",
              next_token="page-3")
    stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": qid(2)})
    # no third page: everything listed after page 2 is older still
    result = stop_overdue_queries(client, workgroup=WORKGROUP, timeout_seconds=60, now=NOW,
                                  lookback=timedelta(hours=6))
    assert result.stopped == (qid(2),)


def test_a_failed_stop_does_not_stop_the_others_and_is_reported(athena: tuple[Any, Stubber]) -> None:
    client, stubber = athena
    list_page(stubber, [execution(1, "RUNNING", 100), execution(2, "RUNNING", 100)])
    stubber.add_client_error("stop_query_execution", "AccessDeniedException", "not authorized",
                             expected_params={"QueryExecutionId": qid(1)})
    stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": qid(2)})
    with pytest.raises(QueryStopError, match=qid(1)):
        stop_overdue_queries(client, workgroup=WORKGROUP, timeout_seconds=60, now=NOW)


def test_a_failed_listing_is_a_query_stop_error(athena: tuple[Any, Stubber]) -> None:
    client, stubber = athena
    stubber.add_client_error("list_query_executions", "InvalidRequestException", "no such workgroup")
    with pytest.raises(QueryStopError, match=WORKGROUP):
        stop_overdue_queries(client, workgroup=WORKGROUP, timeout_seconds=60, now=NOW)


# --- the scheduled handler: both parts run, the evaluator's result carries the stops ----------------------


class FakeEvaluator:
    def __init__(self) -> None:
        self.runs = 0

    def run(self) -> RunResult:
        self.runs += 1
        return RunResult(raised=(), refreshed=(), resolved=(), evaluations=())


def test_the_handler_stops_queries_and_evaluates_alerts() -> None:
    evaluator = FakeEvaluator()
    handler = make_handler(lambda: evaluator, lambda: lambda: StopResult(3, (qid(9),)))  # type: ignore[arg-type,return-value]
    answer = handler({}, CONTEXT)
    assert answer["queries"] == {"checked": 3, "stopped": [qid(9)]}
    assert evaluator.runs == 1


def test_a_stop_failure_still_evaluates_alerts_then_fails_the_run() -> None:
    evaluator = FakeEvaluator()

    def stopper() -> StopResult:
        raise QueryStopError("cannot list")

    handler = make_handler(lambda: evaluator, lambda: stopper)  # type: ignore[arg-type]
    with pytest.raises(QueryStopError):
        handler({}, CONTEXT)
    assert evaluator.runs == 1


def test_the_stopper_reads_its_workgroup_and_limit_from_the_settings(athena: tuple[Any, Stubber]) -> None:
    settings = Settings.from_env({"DATAFORGE_ENV": "dev", "DATAFORGE_ATHENA_WORKGROUP": WORKGROUP,
                                  "DATAFORGE_QUERY_TIMEOUT_SECONDS": "30", "DATAFORGE_ALERT_RULES": to_json_rules(())})
    assert build_stopper(Settings.from_env({"DATAFORGE_ENV": "local"}))() is None  # no workgroup: nothing to do
    client, stubber = athena
    list_page(stubber, [execution(1, "RUNNING", 31), execution(2, "RUNNING", 29)])
    stubber.add_response("stop_query_execution", {}, {"QueryExecutionId": qid(1)})
    stop = build_stopper(settings, clock=lambda: NOW, client=client)
    result = stop()
    assert result is not None
    assert result.stopped == (qid(1),)
