"""The scale-out kit under deploy/ holds together, checked without a container runtime or a cluster.

The image (deploy/Dockerfile) copies files that exist and reach the build context, and its command
serves the code location's module; the compose file (deploy/compose.yaml) builds that image, mounts
files of the repository and takes its secrets from env files whose tracked examples hold none; the Helm
values (deploy/helm/values.yaml) name only chart keys listed in deploy/helm/chart-keys.txt, and give the
pods the same MySQL storage, pools and module as the compose instance (deploy/dagster.yaml).
"""

from __future__ import annotations

import fnmatch
import importlib
import json
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config
from dagster_shared.yaml_utils import load_yaml_from_path

from spot_pipeline.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = DEPLOY / "compose.yaml"
WORKSPACE_FILE = DEPLOY / "workspace.yaml"
INSTANCE_FILE = DEPLOY / "dagster.yaml"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
CHART_KEYS = DEPLOY / "helm" / "chart-keys.txt"

DAGSTER_SERVICES = ("storage-migrate", "code-location", "webserver", "daemon")
SECRET_NAME_PARTS = ("PASSWORD", "API_KEY", "SECRET", "TOKEN")
MYSQL_STORAGE_CLASSES = {
    "run_storage": "MySQLRunStorage",
    "event_log_storage": "MySQLEventLogStorage",
    "schedule_storage": "MySQLScheduleStorage",
}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# --- Dockerfile -------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in joined.splitlines()]
    instructions = [line.partition(" ") for line in lines if line and not line.startswith("#")]
    return [(keyword.upper(), arguments) for keyword, _, arguments in instructions]


def instruction_arguments(keyword: str) -> list[str]:
    return [arguments for found, arguments in dockerfile_instructions() if found == keyword]


def image_command() -> list[str]:
    (command,) = instruction_arguments("CMD")
    return json.loads(command)


def image_environment() -> dict[str, str]:
    assignments = [word for arguments in instruction_arguments("ENV") for word in shlex.split(arguments)]
    return dict(assignment.split("=", 1) for assignment in assignments)


def copied_sources() -> list[str]:
    """The build-context paths COPY takes (COPY --from=stage copies from a stage, not the context)."""
    sources = []
    for arguments in instruction_arguments("COPY"):
        words = shlex.split(arguments)
        if any(word.startswith("--from=") for word in words):
            continue
        sources += [word for word in words if not word.startswith("--")][:-1]
    return sources


def option_value(command: list[str], option: str) -> str:
    return command[command.index(option) + 1]


def test_the_image_command_serves_the_code_location_module() -> None:
    command = image_command()
    module = option_value(command, "-m")
    assert command[:3] == ["dagster", "code-server", "start"]
    assert module == pyproject()["tool"]["dagster"]["module_name"]
    assert hasattr(importlib.import_module(module), "defs")


def test_the_image_is_python_3_11_slim_and_runs_as_a_user_other_than_root() -> None:
    assert {arguments.split()[0] for arguments in instruction_arguments("FROM")} == {"python:3.11-slim"}
    user = instruction_arguments("USER")[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_the_image_installs_the_wheel_with_an_extra_that_pyproject_declares() -> None:
    installs = [arguments for arguments in instruction_arguments("RUN") if "pip install" in arguments]
    wheel_with_extra = r"spot_pipeline-\*\.whl\)\[(\w+)\]"
    extras = {extra for install in installs for extra in re.findall(wheel_with_extra, install)}
    assert extras
    assert extras <= set(pyproject()["project"]["optional-dependencies"])


def test_the_kubernetes_extra_follows_the_dagster_release_of_dagster_mysql() -> None:
    project = pyproject()["project"]
    mysql_pin = next(pin for pin in project["dependencies"] if pin.startswith("dagster-mysql=="))
    (k8s_pin,) = project["optional-dependencies"]["k8s"]
    assert k8s_pin.split("==")[1] == mysql_pin.split("==")[1]


def test_the_image_copies_files_that_exist_and_reach_the_build_context() -> None:
    sources = copied_sources()
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert not excluded_from_build_context(source), f"COPY {source}: .dockerignore leaves it out"


def test_the_image_places_the_instance_files_in_dagster_home() -> None:
    dagster_home = image_environment()["DAGSTER_HOME"]
    copies = [shlex.split(arguments) for arguments in instruction_arguments("COPY")]
    (instance_copy,) = [words for words in copies if "deploy/dagster.yaml" in words]
    assert instance_copy[-1].rstrip("/") == dagster_home


# --- .dockerignore ----------------------------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _parts_match(pattern_parts: list[str], path_parts: list[str]) -> bool:
    return len(pattern_parts) == len(path_parts) and all(
        fnmatch.fnmatchcase(part, pattern) for part, pattern in zip(path_parts, pattern_parts, strict=True)
    )


def pattern_matches(pattern: str, path: str) -> bool:
    """Docker's rule: a pattern matches a path or a folder above it, from the context root; `**/` at
    the start lets it match at any depth; `*` never crosses a `/`."""
    parts = path.split("/")
    anywhere = pattern.startswith("**/")
    pattern_parts = pattern.removeprefix("**/").split("/")
    for end in range(1, len(parts) + 1):
        starts = range(end) if anywhere else range(1)
        if any(_parts_match(pattern_parts, parts[start:end]) for start in starts):
            return True
    return False


def excluded_from_build_context(path: str) -> bool:
    excluded = False
    for pattern in dockerignore_patterns():
        if pattern_matches(pattern.removeprefix("!"), path):
            excluded = not pattern.startswith("!")
    return excluded


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".venv/bin/python",
        "data/market.sqlite",
        "dagster_home/history/runs.db",
        ".env",
        "deploy/.env",
        "deploy/pipeline.env",
        "spot_pipeline/__pycache__/settings.cpython-311.pyc",
        ".pytest_cache/README.md",
    ],
)
def test_the_build_context_leaves_out_local_state_caches_and_secrets(path: str) -> None:
    assert excluded_from_build_context(path)


# --- YAML under deploy/ -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda path: str(path.relative_to(ROOT)))
def test_every_yaml_file_under_deploy_parses_to_a_mapping(path: Path) -> None:
    assert isinstance(load_yaml(path), dict)


def test_the_instance_file_the_kit_mounts_and_copies_exists() -> None:
    # deploy/dagster.yaml comes from the MySQL-instance branch; this fails until that is merged.
    assert INSTANCE_FILE.is_file()


# --- compose ----------------------------------------------------------------------------------------


def compose_services() -> dict[str, dict[str, Any]]:
    return load_yaml(COMPOSE_FILE)["services"]


def env_file_variables(path: Path) -> dict[str, str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def env_variable_names(node: Any) -> Iterator[str]:
    """The names of every `{env: NAME}` in a dagster.yaml tree."""
    if isinstance(node, dict):
        if set(node) == {"env"}:
            yield node["env"]
        for child in node.values():
            yield from env_variable_names(child)


def instance_variables() -> set[str]:
    return set(env_variable_names(load_yaml(INSTANCE_FILE)))


def test_compose_runs_the_services_of_one_host() -> None:
    assert set(compose_services()) == {"mariadb", *DAGSTER_SERVICES}


def test_the_storage_tables_are_created_before_the_webserver_and_daemon_start() -> None:
    assert compose_services()["storage-migrate"]["command"] == ["dagster", "instance", "migrate"]
    for name in ("webserver", "daemon"):
        condition = compose_services()[name]["depends_on"]["storage-migrate"]["condition"]
        assert condition == "service_completed_successfully"


def test_compose_builds_every_dagster_service_from_the_kits_dockerfile() -> None:
    for name in DAGSTER_SERVICES:
        build = compose_services()[name]["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE


def test_files_the_compose_services_mount_exist_in_the_repository() -> None:
    for name, service in compose_services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), f"{name} mounts {source}, which is not in deploy/"


def test_dagster_services_mount_the_instance_and_workspace_files_in_dagster_home() -> None:
    dagster_home = image_environment()["DAGSTER_HOME"]
    for name in DAGSTER_SERVICES:
        volumes = compose_services()[name]["volumes"]
        assert f"./dagster.yaml:{dagster_home}/dagster.yaml:ro" in volumes
        assert f"./workspace.yaml:{dagster_home}/workspace.yaml:ro" in volumes


def test_the_webserver_and_daemon_load_the_workspace_the_services_mount() -> None:
    workspace_path = f"{image_environment()['DAGSTER_HOME']}/workspace.yaml"
    for name in ("webserver", "daemon"):
        assert option_value(compose_services()[name]["command"], "-w") == workspace_path


def test_the_workspace_points_at_the_code_location_services_grpc_port() -> None:
    (location,) = load_yaml(WORKSPACE_FILE)["load_from"]
    server = location["grpc_server"]
    assert server["host"] == "code-location"
    assert str(server["port"]) == option_value(image_command(), "-p")
    assert server["location_name"] == option_value(image_command(), "--location-name")


def test_the_database_keeps_its_data_in_a_volume_and_reports_its_health() -> None:
    compose = load_yaml(COMPOSE_FILE)
    database = compose["services"]["mariadb"]
    (volume,) = database["volumes"]
    assert volume.split(":")[0] in compose["volumes"]
    assert database["healthcheck"]["test"]
    for name in DAGSTER_SERVICES:
        assert compose["services"][name]["depends_on"]["mariadb"]["condition"] == "service_healthy"


def test_the_compose_env_files_have_tracked_examples() -> None:
    env_files = {compose_services()[name].get("env_file") for name in DAGSTER_SERVICES} - {None}
    # `.env` beside the compose file is the one compose reads to fill in ${VARIABLES}.
    for env_file in {".env", *env_files}:
        assert (DEPLOY / f"{env_file}.example").is_file()


def test_every_variable_compose_fills_in_is_in_its_env_example() -> None:
    interpolated = set(re.findall(r"\$\{(\w+)", COMPOSE_FILE.read_text()))
    assert interpolated <= set(env_file_variables(DEPLOY / ".env.example"))


def test_the_pipeline_env_example_names_every_pipeline_setting() -> None:
    assert set(env_file_variables(DEPLOY / "pipeline.env.example")) == set(SETTINGS)


@pytest.mark.parametrize("example", [".env.example", "pipeline.env.example"])
def test_env_examples_leave_every_secret_empty(example: str) -> None:
    secrets = {name for name, setting in SETTINGS.items() if setting.secret}
    for name, value in env_file_variables(DEPLOY / example).items():
        if name in secrets or any(part in name for part in SECRET_NAME_PARTS):
            assert value == "", f"{example} gives {name} a value"


def test_every_dagster_service_gets_the_variables_the_instance_reads() -> None:
    for name in DAGSTER_SERVICES:
        assert instance_variables() <= set(compose_services()[name]["environment"])


def test_the_compose_file_names_variables_never_secret_values() -> None:
    for service in compose_services().values():
        for name, value in service.get("environment", {}).items():
            if any(part in name for part in SECRET_NAME_PARTS):
                assert str(value).startswith("${"), f"{name} is written into compose.yaml"


# --- Helm values ------------------------------------------------------------------------------------


def helm_values() -> dict[str, Any]:
    return load_yaml(HELM_VALUES)


def key_paths(node: Any, prefix: str = "") -> Iterator[str]:
    """Every leaf of a values tree as a dotted path; `[]` stands for an item of a list, and an empty
    mapping or list is a leaf of its own."""
    if isinstance(node, dict) and node:
        for key, child in node.items():
            yield from key_paths(child, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(node, list) and node:
        for child in node:
            yield from key_paths(child, f"{prefix}[]")
    else:
        yield prefix


def documented_chart_keys() -> set[str]:
    lines = (line.strip() for line in CHART_KEYS.read_text().splitlines())
    return {line for line in lines if line and not line.startswith("#")}


def documented_by(path: str, documented: str) -> bool:
    if documented.endswith(".*"):
        stem = documented.removesuffix(".*")
        return path == stem or path.startswith((f"{stem}.", f"{stem}["))
    return path == documented


def test_helm_values_use_only_keys_the_chart_documents() -> None:
    documented = documented_chart_keys()
    paths = set(key_paths(helm_values()))
    undocumented = [path for path in paths if not any(documented_by(path, key) for key in documented)]
    assert not undocumented, f"keys not in {CHART_KEYS.name}: {sorted(undocumented)}"


def test_the_chart_key_list_names_only_keys_the_values_use() -> None:
    paths = set(key_paths(helm_values()))
    unused = [key for key in documented_chart_keys() if not any(documented_by(path, key) for path in paths)]
    assert not unused, f"{CHART_KEYS.name} lists keys values.yaml does not set: {sorted(unused)}"


def test_helm_runs_every_process_from_one_image_with_runs_in_their_own_pods() -> None:
    values = helm_values()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    images = [values["dagsterWebserver"]["image"], values["dagsterDaemon"]["image"], deployment["image"]]
    assert all(image == images[0] for image in images)
    run_coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert run_coordinator["enabled"] is True
    assert run_coordinator["type"] == "QueuedRunCoordinator"
    assert values["postgresql"]["enabled"] is False


def test_helm_code_location_serves_the_images_module() -> None:
    (deployment,) = helm_values()["dagster-user-deployments"]["deployments"]
    assert option_value(deployment["codeServerArgs"], "-m") == option_value(image_command(), "-m")
    assert str(deployment["port"]) == option_value(image_command(), "-p")


def secret_names_in_values() -> set[str]:
    return set(_env_secret_names(helm_values()))


def _env_secret_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, child in node.items():
            if key == "envSecrets":
                yield from (secret["name"] for secret in child)
            else:
                yield from _env_secret_names(child)
    elif isinstance(node, list):
        for child in node:
            yield from _env_secret_names(child)


def test_every_secret_the_helm_values_reference_has_its_creation_command() -> None:
    created = set(re.findall(r"kubectl create secret generic ([\w-]+)", HELM_VALUES.read_text()))
    assert secret_names_in_values()
    assert secret_names_in_values() <= created


def leaf_items(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for child_key, child in node.items():
            yield from leaf_items(child, str(child_key))
    elif isinstance(node, list):
        for child in node:
            yield from leaf_items(child, key)
    else:
        yield key, node


def test_helm_values_hold_no_secret_value() -> None:
    for key, value in leaf_items(helm_values()):
        if isinstance(value, str) and any(part in key.upper() for part in SECRET_NAME_PARTS):
            assert value == "", f"{key} has a value in values.yaml"
        assert not re.search(r"://[^/@\s]+:[^/@\s]+@", str(value)), "a URL with credentials in values.yaml"


def helm_instance_storage() -> dict[str, Any]:
    instance = helm_values()["additionalInstanceConfig"]
    return {name: instance[name] for name in MYSQL_STORAGE_CLASSES}


def test_helm_storage_blocks_name_the_dagster_mysql_classes() -> None:
    for name, storage in helm_instance_storage().items():
        module = importlib.import_module(storage["module"])
        assert storage["class"] == MYSQL_STORAGE_CLASSES[name]
        assert hasattr(module, storage["class"])


def test_helm_storage_config_is_valid_for_each_storage_class(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in set(env_variable_names(helm_instance_storage())):
        monkeypatch.setenv(variable, "3306" if variable.endswith("_PORT") else "placeholder")
    for storage in helm_instance_storage().values():
        storage_class = getattr(importlib.import_module(storage["module"]), storage["class"])
        result = process_config(resolve_to_config_type(storage_class.config_type()), storage["config"])
        assert result.success, result.errors


def test_helm_mysql_storage_replaces_the_charts_postgres_storage(tmp_path: Path) -> None:
    # The chart writes Postgres storage blocks, then appends additionalInstanceConfig. Dagster loads the
    # file with its own YAML loader, for which the later of two equal keys wins.
    charts_own_blocks = "".join(
        f"{name}:\n  module: dagster_postgres\n  class: PostgresStorage\n  config: {{}}\n"
        for name in MYSQL_STORAGE_CLASSES
    )
    appended = yaml.safe_dump(helm_values()["additionalInstanceConfig"], sort_keys=False)
    (tmp_path / "dagster.yaml").write_text(charts_own_blocks + appended)

    loaded = load_yaml_from_path(str(tmp_path / "dagster.yaml"))
    assert {name: loaded[name]["class"] for name in MYSQL_STORAGE_CLASSES} == MYSQL_STORAGE_CLASSES
    dagster_instance_config(str(tmp_path))  # and the whole file is a valid instance configuration


def test_helm_and_compose_instances_read_the_same_mysql_variables() -> None:
    assert set(env_variable_names(helm_instance_storage())) == instance_variables()


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def test_helm_pools_give_the_same_slots_as_the_compose_instance() -> None:
    helm_pools = {snake_case(key): value for key, value in helm_values()["concurrency"]["pools"].items()}
    assert helm_pools == load_yaml(INSTANCE_FILE)["concurrency"]["pools"]
