"""The production instance as a running deployment, for end-to-end tests.

`deploy/dagster.yaml` copied into a temporary DAGSTER_HOME, its storage in a private MariaDB
database and the market tables in another, the fake CCData API in this process, and
`dagster-webserver` and `dagster-daemon run` as real processes driven over GraphQL. Each process
starts a session of its own, which the code servers and run workers it spawns share, and is stopped
with its whole process group; its output goes to a log file that failing tests show. The processes
run in a scratch folder, so a developer's `.env` in the checkout never reaches them. The databases
are dropped at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
import sqlalchemy as sa
from dagster_graphql import DagsterGraphQLClient

from spot_pipeline_dev.fake_ccdata import FakeCCDataServer

REPO_ROOT = Path(__file__).resolve().parents[1]
DEPLOY_INSTANCE = REPO_ROOT / "deploy" / "dagster.yaml"
LOCATION_NAME = "spot_pipeline"
REPOSITORY_NAME = "__repository__"
REQUIRED_DAEMONS = frozenset({"SCHEDULER", "QUEUED_RUN_COORDINATOR", "BACKFILL"})
STOP_GRACE_SECONDS = 20
LOG_TAIL_LINES = 40
# The candle asset's partitions on the deployment: few, so the UI shows a readable partition bar.
DEPLOYMENT_PARTITION_DAYS = 8

T = TypeVar("T")


# --- databases --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrivateDatabases:
    """Two databases of their own on the test server: Dagster's storage and the market tables."""

    server_url: sa.URL
    dagster_db: str
    market_db: str

    @classmethod
    @contextmanager
    def created(cls, server_url: str) -> Iterator[PrivateDatabases]:
        suffix = uuid.uuid4().hex[:8]
        databases = cls(sa.make_url(server_url), f"e2e_dagster_{suffix}", f"e2e_market_{suffix}")
        engine = sa.create_engine(databases.server_url)
        try:
            with engine.begin() as connection:
                for name in (databases.dagster_db, databases.market_db):
                    connection.exec_driver_sql(f"CREATE DATABASE `{name}`")
            yield databases
        finally:
            with engine.begin() as connection:
                for name in (databases.dagster_db, databases.market_db):
                    connection.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            engine.dispose()

    def url_of(self, database: str) -> sa.URL:
        return self.server_url.set(database=database)

    def dagster_storage_env(self) -> dict[str, str]:
        """The DAGSTER_MYSQL_* variables deploy/dagster.yaml reads."""
        url = self.server_url
        return {
            "DAGSTER_MYSQL_HOST": url.host or "127.0.0.1",
            "DAGSTER_MYSQL_PORT": str(url.port or 3306),
            "DAGSTER_MYSQL_USER": url.username or "root",
            "DAGSTER_MYSQL_PASSWORD": url.password or "",
            "DAGSTER_MYSQL_DB": self.dagster_db,
        }

    def market_url(self) -> str:
        return self.url_of(self.market_db).render_as_string(hide_password=False)


# --- processes --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceProcess:
    """A process started in its own session, with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    def start(cls, name: str, command: list[str], env: Mapping[str, str], log_dir: Path) -> ServiceProcess:
        log_path = log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                cwd=log_dir,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return cls(name, process, log_path)

    def stop(self) -> None:
        """SIGTERM to the whole group (code servers, run workers), SIGKILL to what is left after a grace."""
        self._signal_group(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_GRACE_SECONDS)
        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def _signal_group(self, signal_number: int) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal_number)

    def tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        return f"--- {self.name} ({self.log_path}), last {len(lines)} lines\n" + "\n".join(lines)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dagster_command(name: str, *arguments: str) -> list[str]:
    """A Dagster console script of the running interpreter's environment."""
    return [str(Path(sys.executable).parent / name), *arguments]


# --- the deployment ---------------------------------------------------------------------------------


@dataclass
class Deployment:
    """A running webserver and daemon on the production instance, with what they talk to."""

    databases: PrivateDatabases
    fake_api: FakeCCDataServer
    api_key: str
    webserver_url: str
    graphql: DagsterGraphQLClient
    processes: list[ServiceProcess]
    today: dt.date

    def logs(self) -> str:
        return "\n\n".join(process.tail() for process in self.processes)

    def wait_until(self, result: Callable[[], T | None], timeout: float, waiting_for: str) -> T:
        """The first truthy `result()`, polled until `timeout` seconds; else a failure with the logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = result()
            if value:
                return value
            exited = [process.name for process in self.processes if process.process.poll() is not None]
            if exited:
                names = ", ".join(exited)
                raise AssertionError(f"{names} exited while waiting for {waiting_for}\n{self.logs()}")
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {waiting_for}\n{self.logs()}")

    def storage_engine(self) -> sa.Engine:
        return sa.create_engine(self.databases.url_of(self.databases.dagster_db))

    def market_engine(self) -> sa.Engine:
        return sa.create_engine(self.databases.url_of(self.databases.market_db))

    def day(self, days_before_today: int) -> dt.date:
        return self.today - dt.timedelta(days=days_before_today)


def pipeline_env(deployment: Deployment, home: Path, first_partition: dt.date) -> dict[str, str]:
    """The environment of the webserver and the daemon, hence of their code servers and runs."""
    databases, fake_api = deployment.databases, deployment.fake_api
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "DAGSTER_HOME": str(home),
        **databases.dagster_storage_env(),
        "MARKET_DB_URL": databases.market_url(),
        "CCDATA_DATA_API_URL": fake_api.data_api_url,
        "CCDATA_MIN_API_URL": fake_api.min_api_url,
        "CCDATA_API_KEY": deployment.api_key,
        # Held answers (see the overlapping backfills) must not time out.
        "CCDATA_TIMEOUT_SECONDS": "180",
        "OHLCV_START_DATE": first_partition.isoformat(),
        "OHLCV_REVISION_DAYS": "1",
    }


@contextmanager
def running_deployment(
    server_url: str, work_dir: Path, today: dt.date, first_partition: dt.date
) -> Iterator[Deployment]:
    """Everything started, the code location loaded and the daemons healthy; all stopped at exit."""
    home = work_dir / "dagster_home"
    home.mkdir()
    shutil.copy(DEPLOY_INSTANCE, home / "dagster.yaml")
    api_key = f"e2e-{uuid.uuid4().hex}"
    port = free_port()
    with ExitStack() as stack:
        databases = stack.enter_context(PrivateDatabases.created(server_url))
        fake_api = stack.enter_context(FakeCCDataServer(api_key=api_key))
        workspace = str(REPO_ROOT / "workspace.yaml")
        processes = []
        deployment = Deployment(
            databases,
            fake_api,
            api_key,
            f"http://127.0.0.1:{port}",
            DagsterGraphQLClient("127.0.0.1", port_number=port, timeout=60),
            processes,
            today,
        )
        env = pipeline_env(deployment, home, first_partition)
        # As a deployment does before its services start: on an empty storage database the webserver
        # and the daemon would otherwise race to create the same tables.
        subprocess.run(
            dagster_command("dagster", "instance", "migrate"), env=env, check=True, capture_output=True
        )
        webserver = ["-h", "127.0.0.1", "-p", str(port), "-w", workspace]
        for name, command in (
            ("webserver", dagster_command("dagster-webserver", *webserver)),
            ("daemon", dagster_command("dagster-daemon", "run", "-w", workspace)),
        ):
            process = ServiceProcess.start(name, command, env, work_dir)
            stack.callback(process.stop)
            processes.append(process)
        wait_until_ready(deployment)
        yield deployment


def wait_until_ready(deployment: Deployment) -> None:
    deployment.wait_until(lambda: webserver_answers(deployment.webserver_url), 120, "the webserver")
    deployment.wait_until(lambda: location_loaded(deployment.graphql), 120, "the code location to load")
    deployment.wait_until(lambda: daemons_healthy(deployment.graphql), 120, "healthy daemons")


def webserver_answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/server_info", timeout=5).ok
    except requests.ConnectionError:
        return False


# --- GraphQL ----------------------------------------------------------------------------------------

LOCATION_STATUS_QUERY = """
query { workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""

DAEMON_HEALTH_QUERY = """
query { instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }
"""

SCHEDULE_DRY_RUN_MUTATION = """
mutation($selector: ScheduleSelector!, $timestamp: Float) {
  scheduleDryRun(selectorData: $selector, timestamp: $timestamp) {
    __typename
    ... on DryRunInstigationTick { evaluationResult { skipReason error { message }
      runRequests { runKey tags { key value } } } }
    ... on PythonError { message }
  }
}
"""

SENSOR_STATE_QUERY = """
query($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) { __typename ... on Sensor { sensorState { id status } } }
}
"""

STOP_SENSOR_MUTATION = """
mutation($id: String!) {
  stopSensor(id: $id) { __typename ... on StopSensorMutationResult { instigationState { status } } }
}
"""

LAUNCH_BACKFILL_MUTATION = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on PartitionKeysNotFoundError { message }
  }
}
"""

BACKFILL_QUERY = """
query($backfillId: String!) {
  partitionBackfillOrError(backfillId: $backfillId) {
    __typename
    ... on PartitionBackfill { status runs { runId status } }
  }
}
"""


def location_loaded(graphql: DagsterGraphQLClient) -> bool:
    entries = graphql._execute(LOCATION_STATUS_QUERY)["workspaceOrError"]["locationEntries"]
    entry = next((entry for entry in entries if entry["name"] == LOCATION_NAME), None)
    if entry is None or entry["loadStatus"] != "LOADED":
        return False
    loaded = entry["locationOrLoadError"]
    if loaded["__typename"] == "PythonError":
        raise AssertionError(f"the code location failed to load: {loaded['message']}")
    return True


def daemons_healthy(graphql: DagsterGraphQLClient) -> bool:
    statuses = graphql._execute(DAEMON_HEALTH_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
    healthy = {status["daemonType"] for status in statuses if status["healthy"]}
    return healthy >= REQUIRED_DAEMONS


def schedule_run_tags(graphql: DagsterGraphQLClient, schedule_name: str, at: dt.datetime) -> dict[str, str]:
    """The tags of the one run the schedule requests when evaluated at `at` (by its code server)."""
    selector = {
        "repositoryLocationName": LOCATION_NAME,
        "repositoryName": REPOSITORY_NAME,
        "scheduleName": schedule_name,
    }
    tick = graphql._execute(SCHEDULE_DRY_RUN_MUTATION, {"selector": selector, "timestamp": at.timestamp()})
    evaluation = tick["scheduleDryRun"]["evaluationResult"]
    assert evaluation and not evaluation["error"], tick
    (request,) = evaluation["runRequests"]
    return {tag["key"]: tag["value"] for tag in request["tags"]}


def stop_sensor(graphql: DagsterGraphQLClient, sensor_name: str) -> None:
    """Turn a sensor off, as a user would on the Automation page."""
    selector = {
        "repositoryLocationName": LOCATION_NAME,
        "repositoryName": REPOSITORY_NAME,
        "sensorName": sensor_name,
    }
    sensor = graphql._execute(SENSOR_STATE_QUERY, {"selector": selector})["sensorOrError"]
    stopped = graphql._execute(STOP_SENSOR_MUTATION, {"id": sensor["sensorState"]["id"]})["stopSensor"]
    assert stopped["instigationState"]["status"] == "STOPPED", stopped


def launch_asset_backfill(graphql: DagsterGraphQLClient, asset: str, first: dt.date, last: dt.date) -> str:
    """An asset backfill over the partitions first..last, as the UI's Materialize > date range does."""
    params = {
        "partitionsByAssets": [
            {
                "assetKey": {"path": [asset]},
                "partitions": {"range": {"start": first.isoformat(), "end": last.isoformat()}},
            }
        ],
    }
    launched = graphql._execute(LAUNCH_BACKFILL_MUTATION, {"params": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def backfill_state(graphql: DagsterGraphQLClient, backfill_id: str) -> dict[str, Any]:
    """{status, runs: [{runId, status}]} of a backfill."""
    return graphql._execute(BACKFILL_QUERY, {"backfillId": backfill_id})["partitionBackfillOrError"]
