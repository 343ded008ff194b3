"""Checks for the compose lab: an app and its database in one compose.yaml, on the right networks.

The learner writes ``compose.yaml`` (the notebook's ``%%writefile compose.yaml`` cell) with

- a service ``app`` (``busybox``, ``command: ["sleep", "infinity"]``: a stand-in for the app) on a
  ``frontend`` and a ``backend`` network;
- a service ``db`` (``redis``) on ``backend`` only, its data (``/data``) in a named volume declared
  under the top-level ``volumes:``;
- no ``version:`` key (Compose v2 ignores it and warns).

**The answer path** (``docklab check compose <path>``) is a folder holding ``compose.yaml``
(``compose.yml`` and ``docker-compose.yml`` are found too), or the lab notebook, whose last
``%%writefile compose.yaml`` cell is the file.

How it is judged: the file is parsed as YAML (for ``version:``) and by the Compose v2 binary
(``docker compose config``); then it is **run**: the services, networks and volumes the lab asks
for are copied into a file of the grading run's own, with limits (memory, pids, CPU), the course
images by the IDs the judge recorded and the course labels on everything, and ``docker compose -p
<unique project> up -d`` starts it. Anything else (bind mounts, host ports, privileges, builds,
other images, env files) is not run: the file is untrusted. Every ``docker compose`` command runs
**inside the engine being judged**, in a container of the course image ``docklab/compose``
(:mod:`docklab.checks.inside`: not root on a sealed engine, read-only, no capabilities, no network,
that engine's socket as its only engine, an environment of HOME=/tmp and the image's PATH): what the
file interpolates (``${HOME}``) or takes from the environment (``environment: [NAME]``) comes from
that container, never from the grading host. The
engine's state then says which networks each container is on and what is mounted on the db's
/data; ``docker exec`` in app asks db for a PONG over the network; a probe container on the
frontend network alone tries to reach db; a value written to redis must survive ``docker compose
down`` and ``up``. ``docker compose down -v`` removes everything afterwards, pass or fail.

Equivalent CLI: ``docklab check compose <folder or notebook> [--json]``.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time

import docker.errors
import requests.exceptions

from docklab.checks import inside
from docklab.checks.answer import answer_file
from docklab.checks.base import (
    Criterion,
    Lab,
    Verdict,
    failed,
    not_judged,
    passed,
    unjudged,
)
from docklab.checks.sandbox import Sandbox
from docklab.engine import exec_output
from docklab.errors import ImageError

FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
IMAGES = {"app": "busybox", "db": "redis"}
#: The Compose v2 binary, run inside the judged engine.
COMPOSE_IMAGE = "docklab/compose"
#: A compose file reaches the compose container in an environment variable (read-only root).
FILE_BYTES = 100_000
SERVICE_KEYS = {"image", "command", "networks", "volumes", "environment", "depends_on",
                "restart", "labels", "expose", "healthcheck", "ports"}
NETWORK_KEYS = {"driver", "internal", "labels", "name", "attachable", "ipam",
                "enable_ipv6", "driver_opts"}
VOLUME_KEYS = {"driver", "labels", "name"}
LESSON = "05-compose"
TOPICS = {
    "compose_valid": "a compose.yaml's services",
    "no_version_key": "Compose v2 and the version key",
    "db_backend_only": "networks: frontend and backend",
    "app_reaches_db": "service names on a project's networks",
    "frontend_isolated": "networks: frontend and backend",
    "named_volume": "named volumes in compose (down keeps them, down -v removes them)",
}

CRITERIA = [
    Criterion("compose_valid", 1, "docker compose accepts the file: services app (busybox) and "
              "db (redis), nothing grading may not run", needs_image=False),
    Criterion("no_version_key", 1, "the file has no version: key", needs_image=False),
    Criterion("db_backend_only", 2, "db is on the backend network only, app on frontend and "
              "backend"),
    Criterion("app_reaches_db", 2, "app reaches db by its service name (redis answers PONG)"),
    Criterion("frontend_isolated", 1, "from the frontend network, app can be found and db "
              "cannot"),
    Criterion("named_volume", 2, "db keeps /data in a named volume declared under volumes:"),
]


# -- the file -----------------------------------------------------------------------------------

def compose_text(answer) -> tuple[str | None, str]:
    """The learner's compose file, or (None, why not)."""
    return answer_file(answer, *FILES)


class _ComposeTool(inside.ToolContainer):
    """A container of ``docklab/compose`` on the judged engine; ``docker compose`` runs in it
    (:class:`~docklab.checks.inside.ToolContainer`: no shell, a time bound, /tmp only)."""

    def __init__(self, sandbox: Sandbox):
        super().__init__(sandbox, COMPOSE_IMAGE)

    def run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        return super().run(["docker-compose", *args], timeout)


def _problems(config: dict) -> list[str]:
    """What in the normalised file grading will not run, or the lab does not have."""
    problems = []
    services = config.get("services") or {}
    for name in IMAGES:
        if name not in services:
            problems.append(f"There is no service {name!r}.")
    for name, service in services.items():
        extra = sorted(set(service) - SERVICE_KEYS)
        if extra:
            problems.append(f"{name}: {', '.join(extra)} (grading runs only image, command, "
                            "networks, volumes, environment and depends_on).")
        wanted = IMAGES.get(name)
        image = str(service.get("image", "")).removesuffix(":latest")
        if wanted and image != wanted:
            problems.append(f"{name}: image is {service.get('image')!r}; {name} runs {wanted}.")
        elif not wanted and image not in IMAGES.values():
            problems.append(f"{name}: image {service.get('image')!r} is not one of this lab's.")
        for mount in service.get("volumes") or []:
            if mount.get("type") == "volume" and mount.get("source") and \
                    mount["source"] not in (config.get("volumes") or {}):
                problems.append(f"service {name!r} refers to undefined volume "
                                f"{mount['source']}: declare it under the top-level volumes:.")
            elif mount.get("type") != "volume":
                problems.append(f"{name}: a {mount.get('type')} mount of {mount.get('source')}; "
                                "this lab keeps data in named volumes (grading never mounts "
                                "host folders).")
    for name, network in (config.get("networks") or {}).items():
        network = network or {}
        if network.get("external") or set(network) - NETWORK_KEYS:
            problems.append(f"network {name}: only networks the project creates itself.")
    for name, volume in (config.get("volumes") or {}).items():
        volume = volume or {}
        if volume.get("external") or set(volume) - VOLUME_KEYS or \
                volume.get("driver", "local") != "local":
            problems.append(f"volume {name}: only plain named volumes the project creates "
                            "(no external volumes, no driver options).")
    return problems


def _runnable(config: dict, sandbox: Sandbox) -> dict:
    """The lab's part of the file, bounded and labelled, as a compose file of grading's own."""
    limits = sandbox.limits
    services = {}
    for name, service in (config.get("services") or {}).items():
        kept = {k: service[k] for k in ("image", "command", "environment", "depends_on")
                if k in service}
        # The course image by the ID the judge recorded (a tag in the engine may be moved).
        image = str(service.get("image", "")).removesuffix(":latest")
        kept["image"] = sandbox.reference(IMAGES.get(name) or image).id
        if "networks" in service:
            kept["networks"] = {net: ({"aliases": [a for a in (opts or {}).get("aliases", [])
                                                   if isinstance(a, str)]}
                                      if (opts or {}).get("aliases") else None)
                                for net, opts in (service["networks"] or {}).items()}
        kept["volumes"] = [{k: m[k] for k in ("type", "source", "target", "read_only") if k in m}
                           for m in service.get("volumes") or [] if m.get("type") == "volume"]
        kept.update(mem_limit=limits.memory, memswap_limit=limits.memory,
                    pids_limit=limits.pids, cpus=limits.cpus,
                    labels=sandbox.labels("container"), restart="no",
                    logging={"driver": "json-file", "options": {"max-size": "1m"}})
        services[name] = kept
    networks = {name: {"driver": "bridge", "internal": bool((net or {}).get("internal")),
                       "labels": sandbox.labels("network")}
                for name, net in (config.get("networks") or {}).items()}
    volumes = {name: {"labels": sandbox.labels("volume")}
               for name in (config.get("volumes") or {})}
    return {"services": services, "networks": networks, "volumes": volumes}


# -- running it ---------------------------------------------------------------------------------

class _Project:
    def __init__(self, sandbox: Sandbox, tool: _ComposeTool):
        self.sandbox = sandbox
        self.name = re.sub(r"[^a-z0-9_-]", "-", f"docklab-grade-{sandbox.run_id}".lower())
        self.tool = tool
        self.log: list[str] = []

    def run(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
        result = self.tool.run(["-p", self.name, "-f", "graded.json", *args], timeout)
        self.log.append(f"$ docker compose {' '.join(args)} → {result.returncode}\n"
                        f"{result.stderr[-1500:]}")
        return result

    def container(self, service: str):
        found = self.sandbox.client.containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={self.name}", f"com.docker.compose.service={service}"]})
        return found[0] if found else None

    def networks_of(self, container) -> set[str]:
        container.reload()
        names = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        return {n.removeprefix(f"{self.name}_") for n in names}

    def probe(self, network: str, command: str) -> tuple[int | None, str]:
        client = self.sandbox.client
        try:
            probe = client.containers.run(
                self.sandbox.reference("busybox").id, ["sh", "-c", command], detach=True,
                labels=self.sandbox.labels("container"), network=f"{self.name}_{network}",
                **self.sandbox.container_limits())
        except docker.errors.APIError as exc:
            return None, exc.explanation or str(exc)
        try:
            try:
                code = probe.wait(timeout=20).get("StatusCode")
            except (requests.exceptions.RequestException, docker.errors.APIError):
                return None, "the probe did not finish"
            return code, probe.logs(tail=20).decode("utf-8", "replace")
        finally:
            self.sandbox.remove_container(probe.id)


def _redis(container, *command: str) -> str:
    try:
        result = container.exec_run(["redis-cli", *command])
    except docker.errors.APIError as exc:
        return f"(error: {exc.explanation or exc})"
    return result.output.decode("utf-8", "replace").strip()


# stdin stays open a moment: busybox nc may quit at the end of its input, before the answer.
_PING = "(printf 'PING\\r\\n'; sleep 1) | timeout 5 nc db 6379"


def _wait_running(project: _Project, seconds: float = 15) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        found = {s: project.container(s) for s in IMAGES}
        if all(c is not None and c.status == "running" for c in found.values()):
            pong = _redis(found["db"], "ping")
            if "PONG" in pong or time.monotonic() > deadline:
                return found
        elif time.monotonic() > deadline:
            return found
        time.sleep(0.3)


# -- the verdicts -------------------------------------------------------------------------------

def _verdict_networks(project: _Project, found: dict) -> Verdict:
    db, app = found.get("db"), found.get("app")
    if db is None or app is None:
        return unjudged("app and db were not both running.")
    db_nets, app_nets = project.networks_of(db), project.networks_of(app)
    sandbox_details = project.sandbox.details
    sandbox_details["networks"] = {"db": sorted(db_nets), "app": sorted(app_nets)}
    if db_nets != {"backend"}:
        return failed(f"docker inspect: db is on {', '.join(sorted(db_nets)) or 'no network'}; "
                      "it belongs on backend only, so nothing on the frontend can reach the "
                      "database. List it under the service's networks: [backend].")
    if not {"frontend", "backend"} <= app_nets:
        return failed(f"docker inspect: app is on {', '.join(sorted(app_nets))}; it joins both "
                      "networks: frontend (where its clients are) and backend (where db is).")
    return passed("docker inspect: db on backend only; app on frontend and backend.")


def _verdict_reach(found: dict) -> Verdict:
    app = found.get("app")
    if app is None or app.status != "running":
        return unjudged("app was not running (keep its command: "
                      "[\"sleep\", \"infinity\"]).")
    for _ in range(3):  # the network may take a moment on a busy engine
        output = app.exec_run(["sh", "-c", _PING]).output.decode("utf-8", "replace").strip()
        if "+PONG" in output:
            break
        time.sleep(0.5)
    if "+PONG" in output:
        return passed("from app, db:6379 answered +PONG.")
    return failed(f"From app, `nc db 6379` got no PONG ({output[:200] or 'no answer'}): app and "
                  "db must share a network, where the service name db resolves.")


def _verdict_isolated(project: _Project, found: dict, config: dict) -> Verdict:
    if "frontend" not in (config.get("networks") or {}):
        return failed("There is no network called frontend under the top-level networks:.")
    if found.get("app") is None:
        return unjudged("app was not running.")
    # wget to a closed port: "bad address" means the name did not resolve; anything else
    # (connection refused) means it did. Retried: a fresh container's DNS may lag a moment.
    script = ("for i in 1 2 3; do timeout 3 wget -q -O /dev/null http://app:9/ 2>&1 "
              "| grep -q 'bad address' || { echo app=yes; break; }; sleep 1; done; "
              f"{_PING} && echo db=yes")
    _, output = project.probe("frontend", script)
    if "db=yes" in output or "+PONG" in output:
        return failed("A container on the frontend network reached db: the database should be "
                      "out of the frontend's reach (db on backend only).")
    if "app=yes" not in output:
        return failed("A container on the frontend network could not find app: app joins "
                      "frontend too.")
    return passed("on frontend, app resolves and db does not.")


def _verdict_volume(project: _Project, found: dict, config: dict) -> Verdict:
    db = found.get("db")
    if db is None:
        return unjudged("db was not running.")
    db.reload()
    mount = next((m for m in db.attrs.get("Mounts") or [] if m.get("Destination") == "/data"),
                 None)
    declared = set(config.get("volumes") or {})
    if mount is None or mount.get("Type") != "volume":
        return failed("docker inspect: nothing of yours is on db's /data, where redis keeps its "
                      "data: declare a volume under the top-level volumes: and mount it "
                      "(volumes: [\"db-data:/data\"]).")
    name = (mount.get("Name") or "").removeprefix(f"{project.name}_")
    if name not in declared:
        return failed("docker inspect: db's /data is an anonymous volume (the image's VOLUME), "
                      "which docker compose down -v and a re-created container lose. Declare a "
                      "named volume under volumes: and mount it on /data.")
    return passed(f"docker inspect: db's /data is the named volume {name}.")


def _data_survives(project: _Project, found: dict) -> bool | None:
    """SET a value, SAVE, ``docker compose down`` (keeps volumes), ``up -d``, GET it back."""
    db = found.get("db")
    if db is None:
        return None
    value = str(random.randint(100000, 999999))
    _redis(db, "set", "docklab-check", value)
    _redis(db, "save")
    project.run("down", "-t", "2", timeout=60)
    project.run("up", "-d", "--no-build", "--pull", "never", timeout=90)
    again = _wait_running(project)
    if again.get("db") is None:
        return False
    # exec_output asks again when the answer is empty: a value that is gone reads empty each
    # time, while an exec whose output the engine lost (its attach race) reads empty once.
    code, text = exec_output(again["db"], ["redis-cli", "get", "docklab-check"])
    return code == 0 and text.strip() == value


def _environments(found: dict) -> dict[str, list[str]]:
    """The environment each service's container was created with (docker inspect), for the
    record: what the file's interpolation and ``environment:`` resolved to."""
    environments = {}
    for service, container in found.items():
        if container is not None:
            environments[service] = list((container.attrs.get("Config") or {}).get("Env") or [])
    return environments


def judge(*, sandbox: Sandbox, answer, lab: Lab) -> dict[str, Verdict]:
    import yaml

    for image in (*IMAGES.values(), COMPOSE_IMAGE):
        try:
            sandbox.reference(image)
        except docker.errors.ImageNotFound as exc:
            raise ImageError(f"The course image {image} is not on this engine, so the compose "
                             "lab cannot be judged.", "Run `docklab images prepare`.") from exc
    verdicts: dict[str, Verdict] = {}
    text, why = compose_text(answer)
    if text is None or "raise NotImplementedError" in text:
        verdicts["compose_valid"] = failed(why or "The compose.yaml cell still holds the "
                                           "placeholder `raise NotImplementedError()`.")
        verdicts.update(not_judged(lab, "there is no compose file.", only_needing_image=False,
                                   skip=("compose_valid",)))
        return verdicts
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raw = None
        why = f"The file is not valid YAML: {str(exc)[:300]}"
    if not isinstance(raw, dict):
        verdicts["compose_valid"] = failed(why or "The file is not a YAML mapping.")
        verdicts.update(not_judged(lab, "the file could not be read.", only_needing_image=False,
                                   skip=("compose_valid",)))
        return verdicts
    verdicts["no_version_key"] = (failed(
        f"The file starts with version: {raw['version']!r}. Compose v2 follows the Compose "
        "Specification, which has no versions: it ignores the key and warns. Delete the line.")
        if "version" in raw else passed("no version: key."))
    if len(text.encode()) > FILE_BYTES:
        verdicts["compose_valid"] = failed(f"The file is larger than {FILE_BYTES // 1000} kB; "
                                           "this lab's compose.yaml is a few lines.")
        verdicts.update(not_judged(lab, "the file is too large to run."))
        return verdicts
    with _ComposeTool(sandbox) as tool:
        tool.write("compose.yaml", text)
        parsed = tool.run(["-p", "docklab-config", "-f", "compose.yaml", "config", "--format",
                           "json", "--no-interpolate"], 30)
        if parsed.returncode != 0:
            verdicts["compose_valid"] = failed(
                f"docker compose config refused the file: {parsed.stderr.strip()[-400:]}")
            verdicts.update(not_judged(lab, "docker compose could not read the file."))
            return verdicts
        config = json.loads(parsed.stdout)
        problems = _problems(config)
        if problems:
            verdicts["compose_valid"] = failed(" ".join(problems))
            verdicts.update(not_judged(lab, "grading runs only files with what this lab asks "
                                       "for (see compose_valid)."))
            return verdicts
        verdicts["compose_valid"] = passed("services app (busybox) and db (redis).")
        tool.write("graded.json", json.dumps(_runnable(config, sandbox)))
        project = _Project(sandbox, tool)
        try:
            up = project.run("up", "-d", "--no-build", "--pull", "never", timeout=120)
            if up.returncode != 0:
                verdicts["compose_valid"] = failed(
                    f"docker compose up failed: {up.stderr.strip()[-400:]}")
                verdicts.update(not_judged(lab, "docker compose up failed."))
                return verdicts
            found = _wait_running(project)
            sandbox.details["container_env"] = _environments(found)
            verdicts["db_backend_only"] = _verdict_networks(project, found)
            verdicts["app_reaches_db"] = _verdict_reach(found)
            verdicts["frontend_isolated"] = _verdict_isolated(project, found, config)
            verdicts["named_volume"] = _verdict_volume(project, found, config)
            sandbox.details["data_survives"] = (_data_survives(project, found)
                                                if verdicts["named_volume"].passed else False)
        finally:
            project.run("down", "-v", "--remove-orphans", "-t", "2", timeout=90)
            sandbox.details["compose_log"] = project.log[-6:]
    return verdicts


def data_survives(details: dict) -> Verdict:
    """A value written to redis was still there after ``docker compose down`` and ``up`` (what
    the judge recorded): the hidden test of named_volume."""
    if details.get("data_survives") is True:
        return passed("a value saved in redis survived docker compose down and up.")
    return failed("A value saved in redis was gone after docker compose down and up: the named "
                  "volume must hold redis's /data (down keeps named volumes; only down -v removes "
                  f"them). (Lesson {LESSON}: named volumes in compose.)")


LAB = Lab("compose", "compose: an app and its database on the right networks", CRITERIA, judge,
          lesson=LESSON, topics=TOPICS, base_image="busybox", images=("redis", COMPOSE_IMAGE),
          hidden={"named_volume": data_survives}, sealed_ready=True)


#: Judge the compose answer at ``answer`` (a folder with compose.yaml, or the notebook). (nbgrader test cells each ask: judged once per answer)
grade = LAB.grade
#: What the learner runs before handing in: the same checks, judged afresh.
self_check = LAB.self_check


def assert_data_survives_down_and_up(answer: str | os.PathLike = ".") -> None:
    """A value written to redis is still there after ``docker compose down`` and ``up``."""
    verdict = data_survives(grade(answer).details)
    assert verdict.passed, verdict.feedback
