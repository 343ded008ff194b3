"""Checks for the orchestration lab: a stack file deployed on a swarm, a rolling update, restarts.

The learner writes ``stack.yaml`` (the notebook's ``%%writefile stack.yaml`` cell), a Compose file
with a ``deploy:`` section, and deploys it with ``docker stack deploy -c stack.yaml lab``: one
service ``web`` of the course's busybox running the lab's command, ``VERSION`` from the deploying
shell (``${VERSION:-1}``), 3 replicas, an update of one task at a time 1 s apart, a restart of
the tasks that fail 500 ms later, and the service label ``course.lab=orchestration``. The
reference answer is in ``grader/source/orchestration/`` (instructors only: the learner's image
holds no solution).

The rolling update is the Docker way of changing a stack: the same file deployed again with a new
value, ``VERSION=2 docker stack deploy -c stack.yaml lab``. The docker CLI interpolates
``${VERSION:-1}`` from its environment (1 when unset), and the swarm rolls the service's tasks to
the new spec as ``update_config`` says. So the file is the whole answer: no second file, no invented
"update" key.

**The answer path** (``docklab check orchestration <path>``) is a folder holding ``stack.yaml``
(``stack.yml`` is found too), or the lab notebook, whose last ``%%writefile stack.yaml`` cell is
the file.

How it is judged. The file is untrusted: it is read as data, bounded (20 kB, and YAML anchors may
not expand it past a few thousand nodes: a "billion laughs" file is refused before anything
parses it further), and only what the lab asks for is kept: one service with ``image`` (a course
image), ``command``, ``environment`` and a ``deploy:`` section (replicas, update_config,
restart_policy, labels). Anything else (volumes and bind mounts, ports, ``privileged``,
``cap_add``, ``network_mode``, secrets and configs read from files, other images, more than 5
replicas) is refused with a sentence saying why, and nothing is deployed. The real docker CLI then
reads the file, **inside the engine being judged**, in a container of the course image
``docklab/docker-cli`` (:mod:`docklab.checks.inside`: read-only, no capabilities, no network, that
engine's socket as its only engine, HOME=/tmp): ``docker stack config`` validates it and
interpolates it twice, without VERSION and with VERSION=2. From each result grading writes a
stack file of its own (the course image by the ID the judge recorded, its own stack name, the
course labels on the service and its containers, memory and CPU limits, an init process, a 1 s
stop grace period, tasks placed on the engine's own node) and deploys it with ``docker stack
deploy`` from that container: first the VERSION=1 file, then the VERSION=2 one, which is the
rolling update. The engine's state is then judged: the running tasks, the service's ``Spec``
(UpdateConfig, RestartPolicy, Labels), the update's ``UpdateStatus`` and the tasks' new spec, and
a task container killed on purpose (the swarm must replace it). ``docker stack rm`` removes it all
afterwards, pass or fail. The hidden test (:func:`restarts_only_on_failure`) reads the restart
condition the judge recorded in ``details``.

The swarm: grading makes a one-node swarm only when the engine is in none (``docker swarm init``)
and leaves it afterwards (:class:`OneNodeSwarm`). Sealed grading (``nbgrader autograde``,
:mod:`docklab.grading`) runs this same judge in the submission's sealed engine, a rootless dockerd
20.10 with no network of its own, where the swarm is always made and thrown away with the engine;
the grading host's engine never joins or makes one. A rootless swarm cannot run overlay networks
(its tasks are rejected: ``mkdir /var/lib/docker/network: permission denied``), and ``docker stack
deploy`` puts every service on an overlay network ``<stack>_default`` unless told otherwise (the
swarm has no ``none`` network to offer instead): on a rootless engine (a sealed one) grading's
file puts the tasks on the external network ``host``, which there is the sandbox's own network
namespace, with no network at all. On a rootful engine (a learner's own: ``docklab check``, the
self-check) the tasks stay on the stack's default overlay network, labelled like everything else.

Measured on the sealed engine (2 cores): ``docker stack deploy`` from the CLI container 0.2–0.4 s;
a whole check of the right answer (deploy, 3 replicas, the update 1 task a second, a killed task
replaced, ``docker stack rm``) 25–30 s; a file refused before the CLI reads it, under 0.1 s.

Equivalent CLI: ``docklab check orchestration <folder or notebook> [--json]``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import time

import docker.errors
import requests.exceptions

from docklab import labels as L
from docklab.checks import inside
from docklab.checks.answer import answer_file
from docklab.checks.base import Criterion, Lab, Verdict, failed, not_judged, passed, unjudged
from docklab.checks.sandbox import Sandbox
from docklab.errors import EngineError, ImageError

FILES = ("stack.yaml", "stack.yml")
IMAGES = ("busybox", "python:3.11-slim")
#: The docker CLI, run inside the judged engine.
CLI_IMAGE = "docklab/docker-cli"
REPLICAS = 3
MAX_REPLICAS = 5
PARALLELISM = 1
DELAY = 1.0
LABEL = ("course.lab", "orchestration")
#: What the rolling update sets: ``VERSION=2 docker stack deploy -c stack.yaml lab``.
VERSION = ("VERSION", "1", "2")
SECOND = 1_000_000_000
#: A stack file of this lab is a few hundred bytes; YAML anchors may not blow it up past this.
FILE_BYTES = 20_000
MAX_NODES = 2_000
LESSON = "11-orchestration"
TOPICS = {
    "replicas_running": "a replicated service (deploy: replicas)",
    "update_config": "a rolling update (deploy: update_config: parallelism, delay)",
    "labelled": "labels on a service (deploy: labels)",
    "rolling_update": "a rolling update watched task by task",
    "restarts_on_failure": "a killed task replaced (deploy: restart_policy: condition)",
}

#: What grading takes from the file; anything else is refused, saying why. (``init`` and
#: ``stop_grace_period`` are allowed, but grading's own stand: an init process, 1 s.)
SERVICE_KEYS = ("image", "command", "environment", "deploy", "init", "stop_grace_period")
DEPLOY_KEYS = ("mode", "replicas", "update_config", "restart_policy", "labels", "resources")
UPDATE_KEYS = ("parallelism", "delay", "order", "failure_action", "monitor")
RESTART_KEYS = ("condition", "delay", "max_attempts", "window")
#: Why a key a stack file may hold is not run by grading.
REFUSED = {
    "volumes": "grading mounts nothing: a bind mount would show the engine's host files "
               "(a mount of / is the whole host) to the service",
    "ports": "grading publishes no ports",
    "privileged": "grading gives no extra privileges",
    "cap_add": "grading gives no extra capabilities",
    "security_opt": "grading gives no extra privileges",
    "devices": "grading gives no devices of the host",
    "network_mode": "grading chooses the network (network_mode: host shares the host's network)",
    "networks": "grading chooses the network (this lab's service needs none)",
    "pid": "grading shares no namespaces of the host",
    "ipc": "grading shares no namespaces of the host",
    "userns_mode": "grading shares no namespaces of the host",
    "secrets": "grading reads no files of the host (a secret's file: is read where docker "
               "stack deploy runs)",
    "configs": "grading reads no files of the host (a config's file: is read where docker "
               "stack deploy runs)",
    "env_file": "grading reads no files of the host",
    "build": "a stack deploys images, it does not build them",
    "sysctls": "grading changes no kernel settings",
    "ulimits": "grading sets the limits",
}

CRITERIA = [
    Criterion("deploys", 1, "stack.yaml is a stack file grading can deploy, and docker stack "
              "deploy creates its service", needs_image=False),
    Criterion("replicas_running", 2, f"{REPLICAS} replicas run"),
    Criterion("update_config", 2, f"updates go {PARALLELISM} task at a time, {DELAY:.0f} s apart"),
    Criterion("labelled", 1, f"the service carries the label {LABEL[0]}={LABEL[1]}"),
    Criterion("rolling_update", 2, "VERSION=2 docker stack deploy again rolls every replica to "
              "the new spec"),
    Criterion("restarts_on_failure", 2, "a task that fails is replaced"),
]


# -- the file, read as data ---------------------------------------------------------------------

def stack_text(answer) -> tuple[str | None, str]:
    """The learner's stack file, or (None, why not)."""
    return answer_file(answer, *FILES)


def _expanded_size(node, seen: dict, path: set) -> int:
    """How many nodes ``node`` stands for once every alias is expanded (as a loader would)."""
    if id(node) in path:
        raise ValueError("an anchor refers to itself (a recursive structure)")
    if id(node) in seen:
        return seen[id(node)]
    path.add(id(node))
    size = 1
    if isinstance(node.value, list):
        for item in node.value:
            for part in (item if isinstance(item, tuple) else (item,)):
                size += _expanded_size(part, seen, path)
                if size > MAX_NODES:
                    break
    path.discard(id(node))
    seen[id(node)] = size
    return size


def read_yaml(text: str) -> tuple[dict | None, str]:
    """The file as a mapping, read safely and bounded; or (None, what is wrong)."""
    import yaml

    if "raise NotImplementedError" in text:
        return None, ("stack.yaml still holds the placeholder `raise NotImplementedError()`: "
                      "replace it with your stack file.")
    if len(text.encode()) > FILE_BYTES:
        return None, (f"stack.yaml is larger than {FILE_BYTES // 1000} kB; this lab's stack file "
                      "is a dozen lines.")
    try:
        nodes = list(yaml.compose_all(text))
        if len(nodes) != 1 or nodes[0] is None:
            return None, "stack.yaml must hold one YAML document, a mapping with services:."
        if _expanded_size(nodes[0], {}, set()) > MAX_NODES:
            return None, ("stack.yaml's anchors and aliases (&name, *name) expand to more than "
                          f"{MAX_NODES} values: grading reads no file that grows when it is "
                          "loaded (a \"billion laughs\" file).")
        raw = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        return None, f"stack.yaml is not valid YAML: {str(exc)[:300]}"
    if not isinstance(raw, dict) or not isinstance(raw.get("services"), dict):
        return None, ("stack.yaml is a YAML mapping with a services: section, e.g. "
                      "services: {web: {image: busybox, ...}}.")
    return raw, ""


def problems(raw: dict) -> list[str]:
    """What in the file (as written) grading will not run, or this lab does not have."""
    found = []
    for key in raw:
        if key in ("version", "services") or str(key).startswith("x-"):
            continue
        why = REFUSED.get(key, "this lab's stack has one service and nothing else")
        found.append(f"top-level {key}: ({why}).")
    services = raw["services"]
    if len(services) != 1:
        found.append(f"The file has {len(services)} services; this lab's stack has one "
                     "(e.g. web).")
    for name, service in services.items():
        if not isinstance(service, dict):
            found.append(f"service {name} is a mapping (image:, command:, ...).")
            continue
        for key in service:
            if key not in SERVICE_KEYS:
                why = REFUSED.get(key, "this lab's service needs only image, command, "
                                       "environment and deploy")
                found.append(f"service {name}: {key}: is not run by grading ({why}).")
        deploy = service.get("deploy") or {}
        if not isinstance(deploy, dict):
            found.append(f"service {name}: deploy: is a mapping (replicas:, update_config:, ...).")
            continue
        for key in deploy:
            if key not in DEPLOY_KEYS:
                found.append(f"service {name}: deploy: {key}: is not run by grading (it takes "
                             f"{', '.join(DEPLOY_KEYS)}).")
        for section, keys in (("update_config", UPDATE_KEYS), ("restart_policy", RESTART_KEYS)):
            part = deploy.get(section) or {}
            extra = sorted(map(str, set(part) - set(keys))) if isinstance(part, dict) else []
            if extra:
                found.append(f"service {name}: deploy: {section}: {', '.join(extra)} (it takes "
                             f"{', '.join(keys)}).")
    return found


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds(value, name: str, limit: float = 10.0) -> float:
    """A Compose duration (``1s``, ``500ms``, ``1m30s``) in seconds, at most ``limit``."""
    text = str(value).strip()
    if text == "0":
        return 0.0
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{name} is a duration such as 1s or 500ms, not {value!r}.")
    total = sum(float(n) * _UNIT[u] for n, u in parts)
    if total > limit:
        raise ValueError(f"{name} is at most {limit:g}s here (grading waits for it), not {text}.")
    return total


def _whole(value, name: str, low: int = 0, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low or \
            (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ValueError(f"{name} is a whole number {span}, not {value!r}.")
    return value


def service_of(config: dict) -> dict:
    """From ``docker stack config``'s output (the file validated and interpolated), the one
    service as grading runs it: {name, image, command, environment, replicas, labels,
    update_config, restart_policy}. Raises ValueError saying what is wrong."""
    (name, service), = config["services"].items()
    image = str(service.get("image", "")).removeprefix("docker.io/").removeprefix("library/")
    image = image.removesuffix(":latest")
    if image not in IMAGES:
        raise ValueError(f"image is {service.get('image')!r}; the stack runs the course's "
                         f"busybox (grading runs only {', '.join(IMAGES)}).")
    command = service.get("command")
    if isinstance(command, str):
        command = shlex.split(command)  # as Compose reads a command written as one string
    if command is not None and not (isinstance(command, list) and len(command) <= 20
                                    and all(isinstance(c, str) for c in command)):
        raise ValueError('command is a list of strings, e.g. ["sleep", "3600"].')
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, "")
                           for item in environment)
    if not isinstance(environment, dict) or len(environment) > 20:
        raise ValueError("environment maps at most 20 names to values, e.g. VERSION: "
                         "${VERSION:-1}.")
    environment = {str(k): "" if v is None else str(v) for k, v in environment.items()}
    deploy = service.get("deploy") or {}
    if deploy.get("mode", "replicated") != "replicated":
        raise ValueError("deploy: mode is replicated (the lab's service runs a number of "
                         "replicas).")
    replicas = deploy.get("replicas", 1)
    if isinstance(replicas, int) and not isinstance(replicas, bool) and replicas > MAX_REPLICAS:
        raise ValueError(f"deploy: replicas: {replicas} is more than grading runs (at most "
                         f"{MAX_REPLICAS}); the lab asks for {REPLICAS}.")
    replicas = _whole(replicas, "deploy: replicas", 0, MAX_REPLICAS)
    labels = deploy.get("labels") or {}
    if isinstance(labels, list):
        labels = dict(item.split("=", 1) if "=" in item else (item, "") for item in labels)
    if not isinstance(labels, dict):
        raise ValueError(  # noqa: TRY004 - feedback, caught with the rest
            "deploy: labels maps names to values, e.g. course.lab: orchestration.")
    labels = {str(k): str(v) for k, v in labels.items()}
    if any(k.startswith(L.PREFIX) for k in labels):
        raise ValueError(f"deploy: labels under {L.PREFIX} are the course's own.")
    update = deploy.get("update_config") or {}
    update_config = {
        "parallelism": _whole(update.get("parallelism", 1), "update_config: parallelism"),
        "delay": seconds(update.get("delay", 0), "update_config: delay"),
        # Grading waits for the update: a 1 s monitor unless the file says otherwise.
        "monitor": seconds(update.get("monitor", "1s"), "update_config: monitor"),
        "order": update.get("order", "stop-first"),
        "failure_action": update.get("failure_action", "pause"),
    }
    if update_config["order"] not in ("stop-first", "start-first"):
        raise ValueError("update_config: order is stop-first or start-first.")
    if update_config["failure_action"] not in ("pause", "continue", "rollback"):
        raise ValueError("update_config: failure_action is pause, continue or rollback.")
    restart = deploy.get("restart_policy") or {}
    restart_policy = {
        "condition": restart.get("condition", "any"),
        "delay": seconds(restart.get("delay", "5s"), "restart_policy: delay"),
        "max_attempts": _whole(restart.get("max_attempts", 0), "restart_policy: max_attempts"),
        "window": seconds(restart.get("window", 0), "restart_policy: window", 60),
    }
    if restart_policy["condition"] not in ("none", "on-failure", "any"):
        raise ValueError("restart_policy: condition is none, on-failure or any.")
    return {"name": str(name), "image": image, "command": command, "environment": environment,
            "replicas": replicas, "labels": labels, "update_config": update_config,
            "restart_policy": restart_policy}


def _escaped(value):
    """Strings with ``$`` doubled: grading's file is interpolated once more by the CLI, and
    holds what the learner's file resolved to already."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    return value


def _duration(value: float) -> str:
    return f"{round(value * 1000)}ms"


def _rootless(client: docker.DockerClient) -> bool:
    """Whether the engine runs rootless (a sealed engine does; so may a learner's)."""
    return any("rootless" in option for option in client.info().get("SecurityOptions") or [])


def graded_stack(service: dict, sandbox: Sandbox, node: str | None) -> dict:
    """A stack file of grading's own with the lab's part of the learner's service, bounded and
    labelled (JSON, which docker stack deploy reads as YAML)."""
    limits = sandbox.limits
    update, restart = service["update_config"], service["restart_policy"]
    spec = {
        "image": sandbox.reference(service["image"]).id,
        "environment": service["environment"],
        "init": True,
        "stop_grace_period": "1s",
        "labels": sandbox.labels("container"),
        "deploy": {
            "mode": "replicated", "replicas": service["replicas"],
            "labels": {**service["labels"], **sandbox.labels("service")},
            "update_config": {**update, "delay": _duration(update["delay"]),
                              "monitor": _duration(update["monitor"])},
            "restart_policy": {**restart, "delay": _duration(restart["delay"]),
                               "window": _duration(restart["window"])},
            "resources": {"limits": {"memory": f"{limits.memory}b",
                                     "cpus": f"{limits.cpus / 2:g}"}},
            # The tasks stay on this engine, where the image IDs are.
            "placement": {"constraints": [f"node.id=={node}"] if node else []},
        },
    }
    if service["command"] is not None:
        spec["command"] = service["command"]
    if _rootless(sandbox.client):
        # A rootless swarm runs no overlay network (see the module's docstring).
        spec["networks"] = ["outside"]
        networks = {"outside": {"external": True, "name": "host"}}
    else:
        networks = {"default": {"labels": sandbox.labels("network")}}
    return {"version": "3.8", "services": {service["name"]: _escaped(spec)},
            "networks": networks}


# -- the swarm and the CLI ----------------------------------------------------------------------

class OneNodeSwarm:
    """A swarm to deploy on: the engine's own, or a one-node swarm made here and left again.

    ``docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377`` when the engine
    is in none (with ``labels``), ``docker swarm leave --force`` on :meth:`leave` only when it made
    it, or an earlier run with the same lesson label did (a kernel that stopped half-way). A
    worker of another swarm is refused: stacks are deployed on a manager.
    """

    def __init__(self, client: docker.DockerClient, labels: dict[str, str]):
        self.client = client
        self.labels = labels
        self.created = False
        self.had_gwbridge = True

    def join(self) -> OneNodeSwarm:
        """Make the swarm, or use the engine's own; returns itself."""
        state = self.client.info().get("Swarm") or {}
        if state.get("LocalNodeState") == "inactive":
            self.had_gwbridge = bool(self.client.networks.list(names=["docker_gwbridge"]))
            try:
                self.client.swarm.init(advertise_addr="127.0.0.1",
                                       listen_addr="127.0.0.1:2377", labels=self.labels)
                self.created = True
            except docker.errors.APIError as exc:
                if "already part of a swarm" not in str(exc):
                    raise EngineError(f"A swarm could not be created: {exc}",
                                      "Check the engine (`docklab doctor`).") from exc
        elif not state.get("ControlAvailable") and state.get("LocalNodeState") == "active":
            raise EngineError("The engine is a swarm worker: stacks are deployed on a manager.",
                              "Use an engine that is not in a swarm, or a manager.")
        elif state.get("LocalNodeState") == "active":
            self.client.swarm.reload()
            theirs = (self.client.swarm.attrs.get("Spec") or {}).get("Labels") or {}
            mine = self.labels.get(L.LESSON)
            if mine and theirs.get(L.LESSON) == mine:
                self.created, self.had_gwbridge = True, False  # an earlier run's: ours to leave
        return self

    def __enter__(self) -> OneNodeSwarm:  # noqa: PYI034
        return self.join()

    def __exit__(self, *exc) -> None:
        self.leave()

    def leave(self) -> bool:
        """Leave the swarm if this object made it (and remove the docker_gwbridge it added)."""
        if not self.created:
            return False
        try:
            self.client.swarm.leave(force=True)
        except docker.errors.APIError:
            return False
        self.created = False
        if not self.had_gwbridge:
            for network in self.client.networks.list(names=["docker_gwbridge"]):
                try:
                    network.remove()
                except docker.errors.APIError:
                    pass
        return True


class _StackTool(inside.ToolContainer):
    """A container of ``docklab/docker-cli`` on the judged engine; ``docker stack`` runs in it
    (:class:`~docklab.checks.inside.ToolContainer`: no shell, a time bound, /tmp only). Its
    environment is the container's (HOME=/tmp, PATH) and what a command adds (``env``)."""

    def __init__(self, sandbox: Sandbox):
        super().__init__(sandbox, CLI_IMAGE)
        self.log: list[str] = []

    def docker(self, *args: str, env: dict[str, str] | None = None,
               timeout: float = 60) -> tuple[int, str, str]:
        """``docker ARGS`` in the container: (exit status, stdout, stderr)."""
        assignments = [f"{name}={value}" for name, value in (env or {}).items()]
        result = self.run(["env", *assignments, "docker", *args], timeout)
        self.log.append(f"$ docker {' '.join(args)} → {result.returncode}\n"
                        f"{result.stderr[-1500:]}")
        return result.returncode, result.stdout, result.stderr


def _stack_name(sandbox: Sandbox) -> str:
    return re.sub(r"[^a-z0-9-]", "-", f"grade-{sandbox.run_id[-8:]}".lower())


def _wait(condition, timeout: float, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def _same_image(spec_image: str, image_id: str) -> bool:
    """Whether a task's image (an ID, maybe pinned ``@digest``) is the image ``image_id``."""
    return spec_image.split("@", 1)[0] == image_id


def _running(service, env: list[str] | None = None, image: str | None = None) -> list[dict]:
    """The service's tasks that run (and, if given, with that env and image ID)."""
    try:
        tasks = service.tasks(filters={"desired-state": "running"})
    except (docker.errors.APIError, requests.exceptions.RequestException):
        return []
    out = []
    for task in tasks:
        spec = task.get("Spec", {}).get("ContainerSpec", {})
        if task.get("Status", {}).get("State") != "running":
            continue
        if env is not None and not set(env) <= set(spec.get("Env") or []):
            continue
        if image is not None and not _same_image(spec.get("Image", ""), image):
            continue
        out.append(task)
    return out


def _remove_stack(sandbox: Sandbox, tool: _StackTool, stack: str) -> None:
    """``docker stack rm``, then what the swarm leaves for a moment: the tasks' containers
    (removed by the swarm a moment later: waited for) and the stack's network."""
    tool.docker("stack", "rm", stack, timeout=60)
    client = sandbox.client
    filters = {"label": [f"com.docker.stack.namespace={stack}"]}
    _wait(lambda: not client.api.containers(all=True, filters=filters), 20)
    for container in client.api.containers(all=True, filters=filters):
        sandbox.remove_container(container["Id"])
    for service in client.services.list(filters=filters):
        try:
            service.remove()
        except docker.errors.APIError:
            pass
    for network in client.networks.list(filters=filters):
        try:
            network.remove()
        except docker.errors.APIError:
            pass


def stack_gone(client: docker.DockerClient, stack: str, timeout: float = 30) -> bool:
    """Wait until the swarm has removed what ``docker stack rm STACK`` asked it to: the tasks'
    containers and the stack's networks go a moment after the command returns."""
    filters = {"label": [f"com.docker.stack.namespace={stack}"]}

    def gone() -> bool:
        try:
            return not (client.api.containers(all=True, filters=filters)
                        or client.services.list(filters=filters)
                        or client.networks.list(filters=filters))
        except docker.errors.APIError:  # e.g. the engine is in no swarm: no services to list
            return not client.api.containers(all=True, filters=filters)

    return bool(_wait(gone, timeout))


def watch_update(client: docker.DockerClient, name: str, timeout: float = 90,
                 show=print) -> None:
    """``docker service ps NAME`` every half second, one line each time it changes, until the
    service's rolling update has ended (or ``timeout``): each task's slot, its VERSION and state;
    then the update's state (``docker service inspect --format '{{.UpdateStatus.State}}'``)."""
    try:
        service = client.services.get(name)
    except docker.errors.NotFound:
        show(f"There is no service {name} yet: deploy the stack first (the cells above).")
        return
    started, last, state = time.monotonic(), None, None
    while time.monotonic() - started < timeout:
        service.reload()
        state = (service.attrs.get("UpdateStatus") or {}).get("State")
        tasks = sorted(service.tasks(filters={"desired-state": "running"}),
                       key=lambda t: t.get("Slot", 0))
        line = "  ".join(
            f"{name}.{t.get('Slot')} {_version(t)} {t.get('Status', {}).get('State')}"
            for t in tasks)
        if line != last:
            show(f"{time.monotonic() - started:5.1f} s  update {state or '-':<10} {line}")
            last = line
        if state in ("completed", "paused", "rollback_completed", "rollback_paused", None) \
                and time.monotonic() - started > 2:
            break
        time.sleep(0.5)
    show(f"the update is {state or 'not started (nothing changed?)'}"
         + ("" if state in ("completed", None) else f" after {timeout:.0f} s: run this cell again"
            f" to watch on, or docker service inspect {name} for its UpdateStatus"))


def _version(task: dict) -> str:
    env = (task.get("Spec", {}).get("ContainerSpec", {}).get("Env") or [])
    return next((item for item in env if item.startswith(f"{VERSION[0]}=")), f"{VERSION[0]}=?")


# -- the verdicts -------------------------------------------------------------------------------

def _verdict_replicas(service, wanted: int) -> Verdict:
    # Wait for as many as the file asks (up to the lab's 3): 2 of 2 need not wait 40 s for a third.
    target = min(wanted, REPLICAS)
    running = _wait(lambda: len(_running(service)) >= target and _running(service), 40)
    count = len(running or _running(service))
    if wanted != REPLICAS:
        return failed(f"The stack asks for {wanted} replica(s); the lab asks for {REPLICAS}: "
                      f"deploy: replicas: {REPLICAS} (docker service ls shows {REPLICAS}/"
                      f"{REPLICAS}).")
    if count < REPLICAS:
        states = sorted({t.get("Status", {}).get("State", "?") + ": "
                         + (t.get("Status", {}).get("Err") or t.get("Status", {}).get("Message", ""))
                         for t in service.tasks()})
        return failed(f"Only {count} of {REPLICAS} replicas ran within 40 s. docker service ps "
                      f"said: {'; '.join(states)[:600]}. A task must keep running: its command "
                      "may not exit (e.g. exec sleep 3600 after the greeting).")
    return passed(f"{count} replicas run.")


def _verdict_update_config(spec: dict) -> Verdict:
    config = spec.get("UpdateConfig") or {}
    parallelism, delay = config.get("Parallelism"), (config.get("Delay") or 0) / SECOND
    if parallelism != PARALLELISM or delay != DELAY:
        return failed(f"The service updates {parallelism} task(s) at a time, {delay:g} s apart; "
                      f"the lab asks for {PARALLELISM} at a time, {DELAY:g} s apart: "
                      f"deploy: update_config: {{parallelism: {PARALLELISM}, delay: {DELAY:g}s}}, "
                      "so that most replicas keep serving while one is replaced (parallelism 0 "
                      "means all at once).")
    return passed(f"UpdateConfig: Parallelism {parallelism}, Delay {delay:g} s.")


def _verdict_label(spec: dict) -> Verdict:
    found = (spec.get("Labels") or {}).get(LABEL[0])
    if found != LABEL[1]:
        return failed(f"The service's label {LABEL[0]} is {found!r}, not {LABEL[1]!r}: "
                      f"deploy: labels: {{{LABEL[0]}: {LABEL[1]}}} (a label under deploy: is the "
                      "service's; one beside image: would go on its containers only).")
    return passed(f"Labels: {LABEL[0]}={LABEL[1]}.")


def _env_list(environment: dict) -> list[str]:
    return [f"{k}={v}" for k, v in environment.items()]


def _verdict_update(sandbox: Sandbox, tool: _StackTool, stack: str, service,
                    before: dict, after: dict, node: str | None) -> Verdict:
    """Deploy the VERSION=2 reading of the file again, and watch the rolling update."""
    name, old, new = VERSION
    got_before, got_after = before["environment"].get(name), after["environment"].get(name)
    if got_before != old or got_after != new:
        return failed(f"Deployed without VERSION set, the stack's {name} is {got_before!r}; with "
                      f"VERSION={new} docker stack deploy, it is {got_after!r}. The lab asks for "
                      f"{old} and then {new}: environment: {{{name}: ${{{name}:-{old}}}}} takes the "
                      "value from the shell that runs docker stack deploy, 1 when it is unset.")
    if graded_stack(before, sandbox, node) == graded_stack(after, sandbox, node):
        return failed("VERSION=2 docker stack deploy changes nothing in the service: a rolling "
                      "update needs a new spec.")
    tool.write("graded.json", json.dumps(graded_stack(after, sandbox, node)))
    code, _, err = tool.docker("stack", "deploy", "-c", "graded.json", "--resolve-image",
                               "never", "--detach=true", stack)
    if code != 0:
        return failed(f"docker stack deploy of the update failed: {err.strip()[-400:]}")
    new_env = _env_list(after["environment"])
    new_image = sandbox.reference(after["image"]).id

    def converged():
        service.reload()
        state = (service.attrs.get("UpdateStatus") or {}).get("State")
        if state in ("paused", "rollback_completed", "rollback_paused"):
            return state
        fresh = _running(service, new_env, new_image)
        stale = [t for t in _running(service) if t not in fresh]
        return state == "completed" and len(fresh) >= after["replicas"] and not stale and state

    state = _wait(converged, 60)
    if state != "completed":
        status = service.attrs.get("UpdateStatus") or {}
        return failed(f"The rolling update did not converge within 60 s: its state is "
                      f"{status.get('State') or 'unknown'} ({status.get('Message', '')}), and "
                      f"{len(_running(service, new_env, new_image))} of {after['replicas']} "
                      "replicas run the new spec.")
    return passed(f"VERSION={new} docker stack deploy: the update completed, "
                  f"{after['replicas']} replicas run the new spec.")


def _verdict_restart(sandbox: Sandbox, service, spec: dict, wanted: int) -> Verdict:
    policy = (spec.get("TaskTemplate") or {}).get("RestartPolicy") or {}
    condition = policy.get("Condition")
    sandbox.details["restart_condition"] = condition
    patience = 10 + (policy.get("Delay") or 0) / SECOND
    tasks = _running(service)
    if not tasks:
        return unjudged("no task was running to be killed.")
    victim = tasks[0]
    container_id = victim.get("Status", {}).get("ContainerStatus", {}).get("ContainerID")
    try:
        sandbox.client.api.kill(container_id)
    except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
        return unjudged(f"grading could not kill a task's container ({exc}).")
    replaced = _wait(lambda: len([t for t in _running(service) if t["ID"] != victim["ID"]])
                     >= wanted, patience)
    if not replaced:
        return failed(f"A task's container was killed (exit code 137) and the swarm did not "
                      f"replace it within {patience:.0f} s: the restart condition is {condition!r}. "
                      "deploy: restart_policy: {condition: on-failure} makes the swarm start a new "
                      "task when one fails.")
    return passed(f"a killed task was replaced (restart condition {condition}).")


def _refused(verdicts: dict, lab: Lab, why: str, reason: str) -> dict[str, Verdict]:
    verdicts["deploys"] = failed(why)
    verdicts.update(not_judged(lab, reason))
    return verdicts


def _interpolated(tool: _StackTool, env: dict[str, str]) -> tuple[dict | None, str]:
    """``docker stack config -c stack.yaml`` with ``env``: the file validated and interpolated."""
    import yaml

    code, out, err = tool.docker("stack", "config", "-c", "stack.yaml", env=env, timeout=30)
    if code != 0:
        return None, f"docker stack config refused the file: {err.strip()[-400:]}"
    try:
        config = yaml.safe_load(out)
    except yaml.YAMLError as exc:
        return None, f"docker stack config wrote what grading cannot read ({exc})."
    return config, ""


def judge(*, sandbox: Sandbox, answer, lab: Lab) -> dict[str, Verdict]:
    for image in (*IMAGES, CLI_IMAGE):
        try:
            sandbox.reference(image)
        except docker.errors.ImageNotFound as exc:
            raise ImageError(f"The course image {image} is not on this engine, so the "
                             "orchestration lab cannot be judged.",
                             "Run `docklab images prepare`.") from exc
    verdicts: dict[str, Verdict] = {}
    text, why = stack_text(answer)
    raw, why = read_yaml(text) if text is not None else (None, why)
    if raw is None:
        return _refused(verdicts, lab, why, "there is no stack file to deploy.")
    found = problems(raw)
    if found:
        return _refused(verdicts, lab, " ".join(found)[:1500],
                        "grading deploys only a stack with what this lab asks for (see deploys).")
    client = sandbox.client
    with _StackTool(sandbox) as tool, OneNodeSwarm(client, sandbox.labels("swarm")) as swarm:
        sandbox.details["swarm_created"] = swarm.created
        tool.write("stack.yaml", text)
        readings = []
        for env in ({}, {VERSION[0]: VERSION[2]}):
            config, why = _interpolated(tool, env)
            if config is None:
                return _refused(verdicts, lab, why, "docker stack config refused the file.")
            try:
                readings.append(service_of(config))
            except (ValueError, KeyError, AttributeError, TypeError) as exc:
                return _refused(verdicts, lab, f"stack.yaml: {exc}",
                                "there is no stack grading can deploy.")
        before, after = readings
        sandbox.details["environment"] = {"without VERSION": before["environment"],
                                          "VERSION=2": after["environment"]}
        node = (client.info().get("Swarm") or {}).get("NodeID")
        stack = _stack_name(sandbox)
        try:
            tool.write("graded.json", json.dumps(graded_stack(before, sandbox, node)))
            code, _, err = tool.docker("stack", "deploy", "-c", "graded.json", "--resolve-image",
                                       "never", "--detach=true", stack)
            try:
                service = client.services.get(f"{stack}_{before['name']}")
            except docker.errors.NotFound:
                service = None
            if code != 0 or service is None:
                return _refused(verdicts, lab, f"docker stack deploy failed: "
                                f"{err.strip()[-400:]}", "the stack was not deployed.")
            verdicts["deploys"] = passed(f"docker stack deploy created the service "
                                         f"{service.name}.")
            verdicts["replicas_running"] = _verdict_replicas(service, before["replicas"])
            service.reload()
            spec = service.attrs.get("Spec") or {}
            verdicts["update_config"] = _verdict_update_config(spec)
            verdicts["labelled"] = _verdict_label(spec)
            if _running(service):
                verdicts["rolling_update"] = _verdict_update(sandbox, tool, stack, service,
                                                             before, after, node)
                service.reload()
                verdicts["restarts_on_failure"] = _verdict_restart(
                    sandbox, service, service.attrs.get("Spec") or {}, after["replicas"])
            else:
                verdicts.update(not_judged(lab, "no replica ran, so there was nothing to update "
                                           "or to kill.", skip=tuple(verdicts)))
        finally:
            _remove_stack(sandbox, tool, stack)
            sandbox.details["stack_log"] = tool.log[-6:]
    return verdicts


def restarts_only_on_failure(details: dict) -> Verdict:
    """The hidden test of restarts_on_failure, from the restart condition the judge recorded: on
    failure, not always (a task that finished its work is not started again)."""
    condition = details.get("restart_condition")
    if condition is None:
        return unjudged("grading recorded no restart condition.")
    if condition != "on-failure":
        return failed(f"The restart condition is {condition!r}; the lab asks for on-failure: a "
                      "task that fails is replaced, one that finished its work is not (Lesson "
                      f"{LESSON}: {TOPICS['restarts_on_failure']}).")
    return passed("The restart condition is on-failure.")


LAB = Lab("orchestration", "orchestration: a stack, its rolling update and its restarts",
          CRITERIA, judge, base_image="busybox", images=(*IMAGES, CLI_IMAGE),
          hidden={"restarts_on_failure": restarts_only_on_failure}, sealed_ready=True,
          lesson=LESSON, topics=TOPICS)


grade = LAB.grade
self_check = LAB.self_check


def assert_restarts_only_on_failure(answer: str | os.PathLike = ".", **kwargs) -> None:
    """The notebook's hidden test: :func:`restarts_only_on_failure` on the answer's report."""
    verdict = restarts_only_on_failure(grade(answer, **kwargs).details)
    assert verdict.passed, verdict.feedback
