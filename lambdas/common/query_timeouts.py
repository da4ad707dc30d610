"""Stop the API's Athena queries that run past the time limit, without anyone polling them.

The API stops a query over its limit when a client reads its status; a client that never comes back
would leave it running (and scanning) until Athena's own limit. The scheduled alert evaluator calls
``stop_overdue_queries`` every minute: it lists the workgroup's query executions (newest first, as
Athena lists them), reads them 50 at a time, and stops every QUEUED or RUNNING one submitted longer
ago than the limit. Listing stops at the first page whose queries are all older than ``lookback``
(longer than any query can run), and after ``max_pages`` pages. The Athena client is injected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.common.errors import QueryStopError

logger = logging.getLogger(__name__)

PAGE_SIZE: Final = 50  # ListQueryExecutions' and BatchGetQueryExecution's maximum
MAX_PAGES: Final = 20
LOOKBACK: Final = timedelta(hours=6)
ACTIVE: Final = frozenset({"QUEUED", "RUNNING"})


@dataclass(frozen=True, slots=True)
class StopResult:
    checked: int  # executions read
    stopped: tuple[str, ...]  # query execution ids stopped by this run

    def as_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "stopped": list(self.stopped)}


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def stop_overdue_queries(athena: Any, *, workgroup: str, timeout_seconds: float, now: datetime,
                         lookback: timedelta = LOOKBACK, max_pages: int = MAX_PAGES) -> StopResult:
    """Stop the QUEUED/RUNNING executions of ``workgroup`` submitted more than ``timeout_seconds`` before
    ``now``. ``QueryStopError`` when listing or reading fails, or (after trying every one) when a stop failed."""
    overdue_before = now - timedelta(seconds=timeout_seconds)
    horizon = now - lookback
    checked, stopped, failed = 0, [], []
    token: str | None = None
    for _ in range(max_pages):
        request: dict[str, Any] = {"WorkGroup": workgroup, "MaxResults": PAGE_SIZE}
        if token:
            request["NextToken"] = token
        try:
            page = athena.list_query_executions(**request)
            ids = list(page.get("QueryExecutionIds", []))
            read = athena.batch_get_query_execution(QueryExecutionIds=ids) if ids else {}
        except (ClientError, BotoCoreError) as exc:
            raise QueryStopError(f"cannot list the queries of workgroup {workgroup}: {exc}") from exc
        executions = read.get("QueryExecutions", [])
        for unread in read.get("UnprocessedQueryExecutionIds", []):  # read again next minute
            logger.warning("cannot read query %s: %s", unread.get("QueryExecutionId"), unread.get("ErrorMessage"))
        checked += len(executions)
        newest: datetime | None = None
        for execution in executions:
            status = execution.get("Status", {})
            submitted = _aware(status.get("SubmissionDateTime"))
            if submitted is None:
                continue
            newest = submitted if newest is None else max(newest, submitted)
            if status.get("State") in ACTIVE and submitted <= overdue_before:
                query_id = str(execution["QueryExecutionId"])
                try:
                    athena.stop_query_execution(QueryExecutionId=query_id)
                except (ClientError, BotoCoreError) as exc:
                    logger.error("cannot stop query %s of workgroup %s: %s", query_id, workgroup, exc)
                    failed.append(query_id)
                    continue
                logger.info("stopped query %s of workgroup %s: submitted %s, over the %g s limit",
                            query_id, workgroup, submitted.isoformat(), timeout_seconds)
                stopped.append(query_id)
        token = page.get("NextToken")
        if not token or (newest is not None and newest < horizon):
            break
    if failed:
        raise QueryStopError(f"cannot stop {len(failed)} overdue queries of workgroup {workgroup}: "
                             f"{', '.join(failed)} (stopped {len(stopped)})")
    return StopResult(checked, tuple(stopped))
