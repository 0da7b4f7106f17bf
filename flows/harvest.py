"""The harvest flow: portals → one crawl a portal (several at once) → new documents → ingest.

Each portal is crawled by `nianbao.harvest.crawler` in a thread of its own, with one polite
client between them; the documents the warehouse does not hold go to `ingest_flow` with what the
listing said of them (title, date, publisher) as hints. A rerun resumes: a logged URL is always
held in the raw store, is asked for again with its validators, and is still ingested if the run
that fetched it stopped first. A portal's failure is reported in the summary and the Prefect
artifacts and never stops the others; the run then ends Failed.

No `from __future__ import annotations` here: a deployment's run validates the flow's parameters
against its annotations, and string annotations of classes (Portal) do not resolve there.
"""

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.schedules import Cron, Schedule
from prefect.settings import PREFECT_API_URL
from prefect.states import Failed, State
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.types.entrypoint import EntrypointType
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from nianbao.flows.ingest import (
    IngestSummary,
    ingest_flow_on,
    local_cluster_options,
    publish_quality_report,
)
from nianbao.flows.orchestrator import NoPrefectServer, configure_prefect, recorded_run
from nianbao.harvest.client import (
    ClientSettings,
    PoliteClient,
)
from nianbao.harvest.crawler import (
    FetchHistory,
    HarvestSummary,
    PortalResult,
    crawl,
)
from nianbao.harvest.portals import Portal, load_portals
from nianbao.harvest.rawstore import RawStore, StoredDocument, resolve_raw_root
from nianbao.parsers.pool import result_when_done
from nianbao.parsers.report import PARSER_VERSION
from nianbao.schema.db import (
    DB_URL_ENV,
    complete_db_url,
    engine_for,
    mask_secrets,
    public_db_url,
    resolve_db_url,
    upgrade,
)
from nianbao.schema.load import LoadOutcome, known_documents

DEFAULT_TIMEZONE = "Asia/Shanghai"
# `nianbao serve` registers this deployment; prefect.yaml declares `nightly` for workers. Two
# names, so that deploying one never overwrites the other's parameters and schedule.
SERVE_DEPLOYMENT = "nightly-serve"
# Portals crawled at the same time, one thread each; the client keeps each host polite.
PORTALS_AT_ONCE = 8


@task(name="crawl-portal", task_run_name="crawl {portal.name}", cache_policy=NO_CACHE)
def crawl_portal(
    portal: Portal,
    client: PoliteClient,
    history: FetchHistory,
    years: tuple[int, int] | None,
) -> tuple[PortalResult, dict[str, StoredDocument]]:
    """Crawl one portal and download what is new: its counts, and its documents by sha256."""
    return crawl(portal, client, history, years)


def _new_documents(
    engine: Engine, documents: dict[str, StoredDocument]
) -> dict[str, StoredDocument]:
    known = known_documents(engine, documents)
    return {
        sha: doc
        for sha, doc in documents.items()
        if sha not in known or not known[sha].settled(PARSER_VERSION)
    }


@flow(
    name="nianbao-harvest",
    log_prints=False,
    task_runner=ThreadPoolTaskRunner(max_workers=PORTALS_AT_ONCE),
)
def harvest_flow(
    portals: list[Portal] | str,
    db_url: str | None = None,
    years: tuple[int, int] | None = None,
    raw_dir: str | None = None,
    workers: int = 1,
    client_settings: ClientSettings | None = None,
    cluster: str | None = None,
) -> HarvestSummary | State:
    """Harvest the portals (a list, or the path of a portals.toml) and ingest what is new.

    `db_url` is the warehouse without its password (a flow parameter is shown by Prefect): the
    password comes from $NIANBAO_DB, PGPASSWORD or ~/.pgpass where the run executes. `raw_dir`
    is the raw store's root, a folder or an fsspec URL (None: $NIANBAO_RAW or ./raw): the
    crawl keeps every body there and hands ingest the keys of the new documents. `cluster`
    parses and loads them on Dask: a scheduler's address (tcp://host:8786), whose workers must
    reach that raw store and the warehouse, or `local` for a Dask cluster of `workers`
    processes here, started once for the whole harvest when a portal first has new documents
    (a harvest that finds nothing new starts none). The run ends Failed when a portal
    failed or a harvested document did not load.
    """
    configure_prefect()  # a run a Prefect worker starts has not been through the CLI
    with recorded_run(), _dask_cluster(cluster, workers) as address:
        return _harvest(
            portals, db_url, years, resolve_raw_root(raw_dir), workers, client_settings, address
        )


@contextmanager
def _dask_cluster(cluster: str | None, workers: int) -> Iterator[Callable[[], str | None]]:
    """What gives the address the portals' ingests run on. `local` is started here, once,
    rather than by each portal's ingest subflow (a Dask cluster takes seconds to start), and
    only when a portal has new documents: a harvest that finds nothing new starts none."""
    if cluster != "local":
        yield lambda: cluster
        return
    with ExitStack() as started:
        address: list[str] = []

        def start_once() -> str:
            if not address:
                from distributed import LocalCluster

                local = started.enter_context(LocalCluster(**local_cluster_options(workers)))
                address.append(local.scheduler_address)
                get_run_logger().info(
                    "local Dask cluster of %d workers started at %s", workers, address[0]
                )
            return address[0]

        yield start_once


def _harvest(
    portals: list[Portal] | str,
    db_url: str | None,
    years: tuple[int, int] | None,
    raw_dir: str,
    workers: int,
    client_settings: ClientSettings | None,
    cluster: Callable[[], str | None],
) -> HarvestSummary | State:
    logger = get_run_logger()
    if isinstance(portals, str):
        portals = load_portals(portals)
    url = complete_db_url(resolve_db_url(db_url))
    upgrade(url)
    engine = engine_for(url)
    store = RawStore(raw_dir)
    history = FetchHistory(engine, store)
    summary = HarvestSummary()
    run_ids: list[int] = []  # of the portals' ingests: the quality report covers what they loaded
    with PoliteClient(client_settings, history.validators) as client:
        crawls = [crawl_portal.submit(portal, client, history, years) for portal in portals]
        for portal, crawl in zip(portals, crawls, strict=True):
            result = PortalResult(portal.name, portal.region)
            try:
                result_when_done(crawl.wrapped_future)  # a Ctrl-C is acted on meanwhile
                result, documents = crawl.result()
                new = _new_documents(engine, documents)
                result.new = len(new)
                if new:
                    run_ids += _ingest_new(new, url, store.root, workers, cluster(), result)
            except Exception as exc:  # a bug or a database error: still never stop the others
                result.error = mask_secrets(repr(exc))
            if result.failed:
                logger.error("portal %s failed: %s", portal.name, result.error)
            else:
                logger.info(
                    "portal %s: %d listing pages, %d reports, %d downloaded, %d new, %d loaded",
                    portal.name,
                    result.pages,
                    result.reports,
                    result.downloaded,
                    result.new,
                    result.loaded,
                )
            summary.portals.append(result)
    _publish(summary)
    publish_quality_report(engine, run_ids)
    engine.dispose()
    message = summary.failure_message()
    return Failed(message=message, data=summary) if message else summary


def _ingest_new(
    new: dict[str, StoredDocument],
    url: str,
    raw_root: str,
    workers: int,
    cluster: str | None,
    result: PortalResult,
) -> list[int]:
    """Ingest a portal's new documents (a subflow) by their keys in the raw store, on the Dask
    scheduler at `cluster` if given; its counts and problems go to `result`. Returns the
    ingest's run id (none when it stopped before starting one)."""
    state = ingest_flow_on(cluster, workers)(
        [],
        public_db_url(url),
        workers,
        raw_dir=raw_root,
        stored=list(new.values()),
        cluster=cluster,
        return_state=True,
    )
    ingested = state.result(raise_on_failure=False)
    if not isinstance(ingested, IngestSummary):
        raise ingested if isinstance(ingested, BaseException) else RuntimeError(state.message)
    result.loaded = (
        ingested.outcomes[LoadOutcome.LOADED.value] + ingested.outcomes[LoadOutcome.RELOADED.value]
    )
    result.not_loaded = ingested.failed + ingested.not_loaded
    result.problems += [
        (source, f"not loaded: {code}: {message}")
        for source, code, message in ingested.failed_files
    ]
    if ingested.stopped:
        result.error = f"ingest stopped: {ingested.stopped}"
    return [ingested.run_id] if ingested.run_id is not None else []


def _publish(summary: HarvestSummary) -> None:
    create_table_artifact(
        key="harvest-portals",
        table=[
            {
                "portal": p.portal,
                "region": p.region or "",
                "status": "failed" if p.failed else "ok",
                "error": p.error or "",
                "listing pages": p.pages,
                "reports": p.reports,
                "outside the years": p.out_of_range,
                "downloaded": p.downloaded,
                "unchanged": p.not_modified,
                "new": p.new,
                "loaded": p.loaded,
                "problems": len(p.problems),
            }
            for p in summary.portals
        ],
        description="What each portal gave in this harvest",
    )
    create_table_artifact(
        key="harvest-problems",
        table=[
            {"portal": p.portal, "url": url, "problem": problem}
            for p in summary.portals
            for url, problem in p.problems
        ]
        or [{"portal": "", "url": "", "problem": "none"}],
        description="URLs that were not fetched or not loaded, and why",
    )


def cron_schedule(cron: str, timezone: str = DEFAULT_TIMEZONE) -> Schedule:
    """A Prefect cron schedule; ValueError for a bad expression or an unknown time zone."""
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {timezone!r} (an IANA name like Asia/Shanghai)"
        ) from None
    return Cron(cron, timezone=timezone)


def serve_harvest(
    portals_file: str | Path,
    schedule: Schedule,
    *,
    name: str = SERVE_DEPLOYMENT,
    db_url: str | None = None,
    raw_dir: str | None = None,
    workers: int = 1,
    client_settings: ClientSettings | None = None,
    cluster: str | None = None,
) -> None:
    """Register the harvest as a deployment on `schedule` and run its runs (Prefect serve).

    The portals file is re-read by every run, so edits take effect without a restart; it is
    validated here too, so a broken file fails now rather than at the first scheduled run.
    """
    if not PREFECT_API_URL.value():
        raise NoPrefectServer(
            "a schedule needs a Prefect server (the temporary one Prefect starts on its own runs "
            "no scheduler): start one with `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    path = Path(portals_file).resolve()
    load_portals(path)
    url = resolve_db_url(db_url)
    if make_url(url).password:
        # Runs start as subprocesses of this one and inherit its environment: they complete
        # the password-free URL of their parameters from it, so Prefect never stores it.
        os.environ[DB_URL_ENV] = url
    parameters = {
        "portals": str(path),
        "db_url": public_db_url(url),
        # A local folder made absolute: the runs may start in another working directory.
        "raw_dir": RawStore(resolve_raw_root(raw_dir)).root,
        "workers": workers,
        "cluster": cluster,
    }
    if client_settings:
        parameters["client_settings"] = asdict(client_settings)
    harvest_flow.serve(
        name=name,
        schedules=[schedule],
        parameters=parameters,
        description="Harvest the annual-report columns of portals.toml and ingest what is new",
        # The package is installed: a module path works from any working directory.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
