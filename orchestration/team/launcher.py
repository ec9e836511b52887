"""``make team-up`` / ``team-down`` / ``team-status``: the team profile on one machine.

``up``: team.env (generated once), the PostgreSQL cluster and its databases, the team Dagster
home (its dagster.yaml is deploy/dagster.yaml), then every unit of deploy/systemd in After=
order, each waited for until it answers (its X-Baac-Health). Pid files and logs go to
``BAAC_TEAM_DIR/logs``. A unit already running is left alone; a unit that does not answer
stops the start: its log's tail is printed and it is named. ``down``: the units in reverse
order (their whole process group), then the cluster; team.env is moved aside, data stays.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ml.defaults import PROJECT_ROOT
from orchestration.team.postgres import PostgresCluster
from orchestration.team.team_env import ensure_env, env_path, park_env, team_dir
from orchestration.team.units import Unit, read_env_file, read_units

#: How long a unit may take to answer (a code server loads every definition first).
START_TIMEOUT_SECONDS = float(os.environ.get("BAAC_TEAM_START_TIMEOUT", "180"))
STOP_TIMEOUT_SECONDS = 30.0


class TeamError(RuntimeError):
    """A service of the team profile did not start or stop; the message names it."""


@dataclass(frozen=True)
class Team:
    """The profile's folder and variables (team.env)."""

    directory: Path
    variables: dict[str, str]

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    def cluster(self) -> PostgresCluster:
        v = self.variables
        return PostgresCluster(
            self.directory / "postgres",
            int(v["BAAC_PG_PORT"]),
            v["BAAC_PG_USER"],
            v["BAAC_PG_PASSWORD"],
            v["BAAC_PG_HOST"],
        )

    def units(self) -> list[Unit]:
        return read_units(self.directory)

    def pid_file(self, unit: Unit) -> Path:
        return self.logs / f"{unit.name}.pid"

    def log_file(self, unit: Unit) -> Path:
        return self.logs / f"{unit.name}.log"


def load_team(create: bool = False) -> Team:
    """The team profile of ``BAAC_TEAM_DIR``; ``create``: its folder and team.env when missing."""
    folder = team_dir()
    if create:
        folder.mkdir(parents=True, exist_ok=True)
        # The server may run as the postgres user: it must be able to reach its cluster.
        folder.chmod(0o755)
        return Team(folder, ensure_env(folder)[0])
    if not env_path(folder).exists():
        raise TeamError(f"The team profile is not up in {folder} (no team.env): make team-up")
    return Team(folder, read_env_file(env_path(folder)))


def running_pid(team: Team, unit: Unit) -> int | None:
    """The pid of the unit's process when it is alive and still ours (pid files outlive reboots)."""
    try:
        pid = int(team.pid_file(unit).read_text().strip())
        cmdline = [w.decode() for w in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if w]
    except (OSError, ValueError):
        return None
    # A script's cmdline starts with its interpreter: compare the arguments, then the program.
    arguments = unit.argv[1:]
    same_arguments = cmdline[len(cmdline) - len(arguments) :] == arguments
    same_program = any(Path(word).name == Path(unit.argv[0]).name for word in cmdline)
    return pid if same_arguments and same_program else None


def answers(health: str, environment: dict[str, str]) -> bool:
    """Whether ``health`` (see units.HEALTH_KEY) answers now."""
    if health.startswith("tcp://"):
        host, _, port = health.removeprefix("tcp://").rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return True
        except OSError:
            return False
    if health.startswith("command:"):
        argv = health.removeprefix("command:").split()
        env = {**os.environ, **environment}
        return subprocess.run(argv, env=env, capture_output=True, timeout=60).returncode == 0
    try:
        with urllib.request.urlopen(health, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True  # an HTTP status is an answer (the API's /health is 503 without a champion)
    except (urllib.error.URLError, OSError):
        return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_unit(team: Team, unit: Unit) -> int:
    """Start ``unit`` in a process group of its own and wait until it answers."""
    team.logs.mkdir(parents=True, exist_ok=True)
    log = team.log_file(unit).open("ab")
    process = subprocess.Popen(
        unit.argv,
        cwd=unit.working_directory,
        env={**os.environ, **unit.environment},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own group: stopped whole, workers included
    )
    log.close()
    team.pid_file(unit).write_text(f"{process.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not (unit.health and answers(unit.health, unit.environment)):
        if process.poll() is not None or time.monotonic() > deadline:
            why = f"exited with {process.returncode}" if process.poll() is not None else "did not answer"
            stop_unit(team, unit)
            raise TeamError(
                f"{unit.name} {why} ({unit.health}). The end of {team.log_file(unit)}:\n"
                + tail(team.log_file(unit))
            )
        time.sleep(0.5)
    if process.poll() is not None:  # the answer came from another process on its port
        stop_unit(team, unit)
        raise TeamError(
            f"{unit.name} exited with {process.returncode} although {unit.health} answers: is another"
            f" server on that port? The end of {team.log_file(unit)}:\n" + tail(team.log_file(unit))
        )
    return process.pid


def stop_unit(team: Team, unit: Unit) -> bool:
    """SIGTERM to the unit's process group, SIGKILL after a grace period. True when one ran."""
    pid_file = team.pid_file(unit)
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    stopped = False
    try:
        os.killpg(pid, signal.SIGTERM)
        stopped = True
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            os.killpg(pid, 0)  # raises once the whole group is gone
            reap(pid)
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)
        time.sleep(0.2)
        reap(pid)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)
    return stopped


def reap(pid: int) -> None:
    """Collect our own child once it exited (a zombie still counts in its group)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def prepare_dagster_home(team: Team) -> None:
    """The team Dagster home: its dagster.yaml IS deploy/dagster.yaml (a link)."""
    home = Path(team.variables["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    link = home / "dagster.yaml"
    target = PROJECT_ROOT / "deploy" / "dagster.yaml"
    if link.is_symlink() and link.resolve() == target.resolve():
        return
    link.unlink(missing_ok=True)
    link.symlink_to(target)


def up(say=print) -> Team:
    team = load_team(create=True)
    cluster = team.cluster()
    if cluster.running():
        say(f"postgres: already running on port {cluster.port}")
    else:
        cluster.start()
        say(f"postgres: started on port {cluster.port} ({cluster.directory})")
    cluster.wait_ready()
    cluster.create_databases()
    (team.directory / "mlflow-artifacts").mkdir(exist_ok=True)
    prepare_dagster_home(team)
    for unit in team.units():
        pid = running_pid(team, unit)
        if pid is not None:
            say(f"{unit.name}: already running (pid {pid})")
            continue
        started = time.monotonic()
        pid = start_unit(team, unit)
        took = time.monotonic() - started
        say(f"{unit.name}: started (pid {pid}), answering after {took:.0f} s at {unit.health}")
    return team


def down(say=print) -> None:
    folder = team_dir()
    if not env_path(folder).exists():
        say(f"The team profile is not up in {folder} (no team.env): nothing to stop")
        return
    team = load_team()
    for unit in reversed(team.units()):
        started = time.monotonic()
        stopped = stop_unit(team, unit)
        say(
            f"{unit.name}: stopped in {time.monotonic() - started:.0f} s"
            if stopped
            else f"{unit.name}: not running"
        )
    cluster = team.cluster()
    if cluster.running():
        cluster.stop()
        say("postgres: stopped")
    park_env(folder)
    say(f"Back to the embedded profile; the team's data stays in {folder}")


def status(say=print) -> bool:
    """Print each service's state; True when all of them run."""
    team = load_team()
    cluster = team.cluster()
    all_up = cluster.running()
    say(f"postgres: {'running' if all_up else 'stopped'} on port {cluster.port}")
    for unit in team.units():
        pid = running_pid(team, unit)
        all_up = all_up and pid is not None
        say(f"{unit.name}: {f'running (pid {pid})' if pid else 'stopped'}  {unit.health}")
    return all_up


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else "status"
    try:
        if command == "up":
            up()
        elif command == "down":
            down()
        elif command == "status":
            return 0 if status() else 3
        else:
            print("usage: python -m orchestration.team up|down|status", file=sys.stderr)
            return 2
    except TeamError as error:
        print(f"team-{command} failed: {error}", file=sys.stderr)
        return 1
    return 0
