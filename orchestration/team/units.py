"""The service units of deploy/systemd, read as the commands ``make team-up`` starts.

The units are the one description of each process: systemd starts them in a deployment, the
launcher (orchestration/team/launcher.py) starts the same ExecStart on one machine. A unit is
written for a checkout at ``/opt/baac``; here that prefix reads as this checkout and
``/opt/baac/data/team`` as ``BAAC_TEAM_DIR``. Variables expand as systemd expands them:
``${VAR}`` from Environment= and EnvironmentFile=, one argument each (an unset one is an
error naming it, where systemd would pass an empty string).
"""

from __future__ import annotations

import configparser
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from ml.defaults import PROJECT_ROOT

#: Where the units expect the checkout, and its team folder.
DEPLOY_ROOT = "/opt/baac"
DEPLOY_TEAM_DIR = "/opt/baac/data/team"
UNITS_DIR = PROJECT_ROOT / "deploy" / "systemd"
#: The key (ignored by systemd: X- prefix) that says when a unit's process answers:
#: ``http://...`` (any HTTP status), ``tcp://host:port``, or ``command:<argv>`` (exit 0).
HEALTH_KEY = "X-Baac-Health"

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class UnitError(ValueError):
    """A unit file cannot be read or expanded; the message names the file and the key."""


@dataclass(frozen=True)
class Unit:
    """One process as its unit file describes it, variables expanded."""

    name: str  # the file name without .service, e.g. baac-mlflow
    argv: list[str]
    environment: dict[str, str]  # Environment= and EnvironmentFile=, in that precedence
    working_directory: Path
    health: str
    after: list[str]  # the units of ours that must answer first


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (systemd's EnvironmentFile=, also what the Makefile includes)."""
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise UnitError(f"{path}:{number}: expected KEY=value, got {line!r}")
        values[key.strip()] = value.strip()
    return values


def _localise(value: str, project_root: Path, team_dir: Path) -> str:
    """A path written for /opt/baac, read for this checkout and its team folder."""
    value = value.replace(DEPLOY_TEAM_DIR, str(team_dir))
    return re.sub(rf"{re.escape(DEPLOY_ROOT)}(?=/|$|\s)", str(project_root), value)


def expand(text: str, variables: dict[str, str], where: str) -> str:
    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in variables:
            raise UnitError(f"{where}: ${{{name}}} is not set (team.env or Environment=)")
        return variables[name]

    return _VARIABLE.sub(substitute, text)


def _values(text: str, section: str, key: str) -> list[str]:
    """Every value of ``key`` in ``section``, as systemd reads repeated Environment= lines
    (configparser keeps only the last): added up, an empty one clearing those before."""
    values, current = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif current == section and line.partition("=")[0].strip() == key:
            value = line.partition("=")[2].strip()
            values = [*values, value] if value else []
    return values


def _assignments(path: Path, text: str) -> list[str]:
    """The ``KEY=value`` words of the unit's Environment= lines, each line split on its own."""
    try:
        return [word for line in _values(text, "Service", "Environment") for word in shlex.split(line)]
    except ValueError as error:  # an unclosed quote
        raise UnitError(f"{path}: Environment= cannot be read ({error})") from error


def read_unit(path: Path, team_dir: Path, project_root: Path = PROJECT_ROOT) -> Unit:
    """The unit at ``path``, localised and expanded with its environment."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # keys are case-sensitive, as systemd's
    try:
        text = path.read_text()
        parser.read_string(text, source=str(path))
        service = parser["Service"]
        exec_start = service["ExecStart"]
    except (configparser.Error, KeyError) as error:
        raise UnitError(f"{path}: not a service unit with an ExecStart ({error})") from error
    environment: dict[str, str] = {}
    if "EnvironmentFile" in service:
        env_file = Path(_localise(service["EnvironmentFile"].lstrip("-"), project_root, team_dir))
        if not env_file.exists():
            raise UnitError(f"{path}: EnvironmentFile {env_file} does not exist (run make team-up)")
        environment.update(read_env_file(env_file))
    for assignment in _assignments(path, text):
        key, _, value = assignment.partition("=")
        environment[key] = _localise(value, project_root, team_dir)
    where = f"{path.name} ExecStart"
    argv = [
        expand(_localise(word, project_root, team_dir), environment, where)
        for word in shlex.split(exec_start)
    ]
    health = expand(_localise(service.get(HEALTH_KEY, ""), project_root, team_dir), environment, path.name)
    after = parser["Unit"].get("After", "").split() if parser.has_section("Unit") else []
    return Unit(
        name=path.name.removesuffix(".service"),
        argv=argv,
        environment=environment,
        working_directory=Path(
            _localise(service.get("WorkingDirectory", DEPLOY_ROOT), project_root, team_dir)
        ),
        health=health,
        after=[name.removesuffix(".service") for name in after],
    )


def start_order(units: list[Unit]) -> list[Unit]:
    """The units so that each comes after those of ours it names in After= (a cycle is an error)."""
    by_name = {unit.name: unit for unit in units}
    ordered: list[Unit] = []
    visiting: set[str] = set()

    def visit(unit: Unit) -> None:
        if unit in ordered:
            return
        if unit.name in visiting:
            raise UnitError(f"After= forms a cycle through {unit.name}")
        visiting.add(unit.name)
        for name in unit.after:
            if name in by_name:
                visit(by_name[name])
        visiting.discard(unit.name)
        ordered.append(unit)

    for unit in sorted(units, key=lambda u: u.name):
        visit(unit)
    return ordered


def read_units(team_dir: Path, units_dir: Path = UNITS_DIR, project_root: Path = PROJECT_ROOT) -> list[Unit]:
    """Every unit of deploy/systemd, in start order."""
    return start_order(
        [read_unit(path, team_dir, project_root) for path in sorted(units_dir.glob("*.service"))]
    )
