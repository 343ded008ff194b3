"""Checks for the orchestration lab: a replicated swarm service, a rolling update, restarts.

The answer is a folder holding ``service.json`` (the lab folder, where the notebook's ``%%writefile
service.json`` cell writes it), or the notebook itself (its last ``%%writefile service.json``
cell). ``service.json`` is a service spec, its keys named like docker-py's
``client.services.create`` arguments (and ``docker service create`` flags)::

    {"image": "busybox",
     "command": ["sh", "-c", "echo version $VERSION; exec sleep 3600"],
     "replicas": 3,                                   --replicas 3
     "env": {"VERSION": "1"},                         --env VERSION=1
     "labels": {"course.lab": "orchestration"},       --label course.lab=orchestration
     "update_config": {"parallelism": 1, "delay": 1}, --update-parallelism 1 --update-delay 1s
     "restart_policy": {"condition": "on-failure"},   --restart-condition on-failure
     "update": {"env": {"VERSION": "2"}}}             the rolling update: docker service update --env-add

Durations are in seconds. Grading deploys it on a one-node swarm (``docker swarm init`` only when the
engine is in none, and ``docker swarm leave`` afterwards only when grading created it), with the
course labels, grading's memory and CPU limits, an init process, a 1 s stop grace period and a
placement on the engine's own node, the course images by ID (:meth:`Sandbox.reference`), then
judges from the engine: the running tasks, the service's ``Spec`` (UpdateConfig, RestartPolicy,
Labels), a rolling update to the ``update`` section (its ``UpdateStatus`` and the tasks' new spec),
and a task container killed on purpose (the swarm must replace it). The service and its containers
are removed afterwards, pass or fail. The hidden test (:func:`restarts_only_on_failure`) reads the
restart condition the judge recorded in ``details``.

Sealed grading (``nbgrader autograde``, :mod:`docklab.grading`) runs this same judge, unchanged, in
the submission's sealed engine: a rootless dockerd 20.10 with no network of its own, where the swarm
is made (always: that engine is never in one) and thrown away with the engine. Nothing is deployed
on the grading host's engine, which never joins or makes a swarm. Measured on that engine (2 cores,
busybox): ``swarm init`` 0.6 s; 3 replicas with ``init``, limits and an on-failure restart policy
running in 1.5 s; the rolling update (1 at a time, 1 s delay, 1 s monitor) completed in 10.6 s; a
killed task replaced in 1.7 s. A spec like this lab's, with no network and no published port, is
exactly what a rootless swarm can run (its tasks sit on the default bridge). What it cannot run:
a user-defined overlay network (its tasks, ``endpoint_mode: dnsrr`` too, are rejected: ``mkdir
/var/lib/docker/network: permission denied``), which is why ``service.json`` has no ``networks``
key; a published port did attach to the ingress network there, and host-network tasks ran.

Equivalent CLI: ``docklab check orchestration <folder or notebook> [--json]``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import docker.errors
import requests.exceptions
from docker.types import Resources, RestartPolicy, ServiceMode, UpdateConfig

from docklab import labels as L
from docklab.checks.answer import writefile_cell
from docklab.checks.base import Criterion, Lab, Verdict, failed, not_judged, passed, unjudged
from docklab.checks.sandbox import Sandbox
from docklab.errors import EngineError, ImageError

SPEC = "service.json"
IMAGES = ("busybox", "python:3.11-slim")
REPLICAS = 3
PARALLELISM = 1
DELAY = 1.0
LABEL = ("course.lab", "orchestration")
SECOND = 1_000_000_000
LESSON = "11-orchestration"
TOPICS = {
    "replicas_running": "a replicated service (docker service create --replicas)",
    "update_config": "a rolling update (--update-parallelism, --update-delay)",
    "labelled": "labels on a service (--label)",
    "rolling_update": "a rolling update watched task by task",
    "restarts_on_failure": "a killed task replaced (--restart-condition)",
}
KEYS = ("image", "command", "replicas", "env", "labels", "update_config", "restart_policy",
        "update")

CRITERIA = [
    Criterion("deploys", 1, "service.json is a valid spec and the service is created",
              needs_image=False),
    Criterion("replicas_running", 2, f"{REPLICAS} replicas run"),
    Criterion("update_config", 2, f"updates go {PARALLELISM} task at a time, {DELAY:.0f} s apart"),
    Criterion("labelled", 1, f"the service carries the label {LABEL[0]}={LABEL[1]}"),
    Criterion("rolling_update", 2, "the rolling update converges: every replica runs the new spec"),
    Criterion("restarts_on_failure", 2, "a task that fails is replaced"),
]


# -- the answer's spec --------------------------------------------------------------------------

def spec_text(answer) -> tuple[str | None, str]:
    if SPEC in answer.files:
        return answer.files[SPEC].decode("utf-8", "replace"), ""
    if answer.kind == "notebook":

        return writefile_cell(Path(answer.source), SPEC)
    return None, (f"There is no {SPEC} in the folder {answer.source}: run the %%writefile "
                  f"{SPEC} cell, which writes it next to the notebook.")


def _seconds(value, name: str, limit: float = 10.0) -> int:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= limit:
        raise ValueError(f'"{name}" is a number of seconds between 0 and {limit:.0f}.')
    return int(value * SECOND)


def _env(value, name: str) -> list[str]:
    if not (isinstance(value, dict) and len(value) <= 20
            and all(isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in
                    value.items())):
        raise ValueError(f'"{name}" maps names to values, e.g. {{"VERSION": "1"}}.')
    return [f"{k}={v}" for k, v in value.items()]


def parse_spec(text: str) -> tuple[dict | None, str]:
    """service.json → {create: kwargs, update_env, update_image, ...}, or (None, what is wrong)."""
    if "raise NotImplementedError" in text:
        return None, (f"{SPEC} still holds the placeholder `raise NotImplementedError()`: "
                      "replace it with your JSON service spec.")
    try:
        spec = json.loads(text)
    except ValueError as exc:
        return None, (f"{SPEC} is not valid JSON ({exc}): one object in braces, keys and strings "
                      "in double quotes, no trailing commas, no comments.")
    if not isinstance(spec, dict):
        return None, f"{SPEC} must hold one JSON object ({{...}})."
    unknown = sorted(set(spec) - set(KEYS))
    if unknown:
        return None, (f"{SPEC} has keys grading does not accept: {', '.join(unknown)}. It takes "
                      f"only {', '.join(KEYS)}.")
    try:
        image = spec.get("image")
        if image not in IMAGES:
            raise ValueError(f'"image" is one of the course images {", ".join(IMAGES)}.')
        command = spec.get("command")
        if command is not None and not (isinstance(command, list) and len(command) <= 20
                                        and all(isinstance(c, str) for c in command)):
            raise ValueError('"command" is a list of strings, e.g. ["sleep", "3600"].')
        replicas = spec.get("replicas", 1)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or not 0 <= replicas <= 5:
            raise ValueError('"replicas" is a whole number from 0 to 5.')
        env = _env(spec.get("env") or {}, "env")
        labels = spec.get("labels") or {}
        if not (isinstance(labels, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in labels.items())):
            raise ValueError('"labels" maps names to strings, e.g. {"course.lab": "orchestration"}.')
        if any(k.startswith(L.PREFIX) for k in labels):
            raise ValueError(f'"labels" under {L.PREFIX} are the course\'s own.')
        update = spec.get("update_config") or {}
        if not isinstance(update, dict) or set(update) - {"parallelism", "delay", "order",
                                                          "failure_action", "monitor"}:
            raise ValueError('"update_config" takes parallelism, delay, order, failure_action '
                             'and monitor, e.g. {"parallelism": 1, "delay": 1}.')
        parallelism = update.get("parallelism", 1)
        if not isinstance(parallelism, int) or isinstance(parallelism, bool) or parallelism < 0:
            raise ValueError('"update_config.parallelism" is a whole number (0: all at once).')
        if update.get("order", "stop-first") not in ("stop-first", "start-first"):
            raise ValueError('"update_config.order" is "stop-first" or "start-first".')
        if update.get("failure_action", "pause") not in ("pause", "continue", "rollback"):
            raise ValueError('"update_config.failure_action" is pause, continue or rollback.')
        update_config = UpdateConfig(
            parallelism=parallelism, delay=_seconds(update.get("delay", 0), "update_config.delay"),
            order=update.get("order"), failure_action=update.get("failure_action", "pause"),
            # Grading waits for the update: a 1 s monitor unless the answer says otherwise.
            monitor=_seconds(update.get("monitor", 1), "update_config.monitor"))
        restart = spec.get("restart_policy") or {}
        if not isinstance(restart, dict) or set(restart) - {"condition", "delay", "max_attempts",
                                                            "window"}:
            raise ValueError('"restart_policy" takes condition, delay, max_attempts and window.')
        if restart.get("condition", "any") not in ("none", "on-failure", "any"):
            raise ValueError('"restart_policy.condition" is none, on-failure or any.')
        attempts = restart.get("max_attempts", 0)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 0:
            raise ValueError('"restart_policy.max_attempts" is a whole number.')
        restart_policy = RestartPolicy(
            condition=restart.get("condition", "any"),
            delay=_seconds(restart.get("delay", 1), "restart_policy.delay"),
            max_attempts=attempts, window=_seconds(restart.get("window", 0),
                                                   "restart_policy.window", 60))
        change = spec.get("update")
        if not isinstance(change, dict) or not change or set(change) - {"env", "image"}:
            raise ValueError('"update" says what the rolling update changes: "env" and/or '
                             '"image", e.g. {"env": {"VERSION": "2"}}.')
        if "image" in change and change["image"] not in IMAGES:
            raise ValueError(f'"update.image" is one of {", ".join(IMAGES)}.')
        new_env = _env(change.get("env") or {}, "update.env")
    except ValueError as exc:
        return None, f"{SPEC}: {exc}"
    merged = dict(item.split("=", 1) for item in env)
    merged.update(dict(item.split("=", 1) for item in new_env))
    return {
        "image": image, "command": command, "replicas": replicas, "env": env, "labels": labels,
        "update_config": update_config, "restart_policy": restart_policy,
        "new_image": change.get("image", image),
        "new_env": [f"{k}={v}" for k, v in merged.items()],
    }, ""


# -- the swarm ----------------------------------------------------------------------------------

class _Swarm:
    """A swarm to deploy on: the engine's own, or one made here and left again afterwards."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.created = False
        self.had_gwbridge = True

    def __enter__(self):
        client = self.sandbox.client
        state = client.info().get("Swarm") or {}
        if state.get("LocalNodeState") == "inactive":
            self.had_gwbridge = bool(client.networks.list(names=["docker_gwbridge"]))
            try:
                client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377",
                                  labels=self.sandbox.labels("swarm"))
                self.created = True
            except docker.errors.APIError as exc:
                if "already part of a swarm" not in str(exc):
                    raise EngineError(f"Grading could not create a swarm: {exc}",
                                      "Check the engine (`docklab doctor`).") from exc
        elif not state.get("ControlAvailable") and state.get("LocalNodeState") == "active":
            raise EngineError("The engine is a swarm worker: services are created on a manager.",
                              "Grade on an engine that is not in a swarm, or on a manager.")
        self.sandbox.details["swarm_created"] = self.created
        return self

    def __exit__(self, *exc):
        if not self.created:
            return
        client = self.sandbox.client
        try:
            client.swarm.leave(force=True)
        except docker.errors.APIError:
            return
        if not self.had_gwbridge:
            for network in client.networks.list(names=["docker_gwbridge"]):
                try:
                    network.remove()
                except docker.errors.APIError:
                    pass


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


def _remove_service(sandbox: Sandbox, service) -> None:
    try:
        service.remove()
    except (docker.errors.APIError, requests.exceptions.RequestException):
        pass
    client = sandbox.client
    filters = {"label": [f"com.docker.swarm.service.id={service.id}"]}
    # The swarm removes the tasks' containers by itself, a moment later: wait for it.
    _wait(lambda: not client.api.containers(all=True, filters=filters), 20)
    for container in client.api.containers(all=True, filters=filters):
        sandbox.remove_container(container["Id"])


# -- the verdicts -------------------------------------------------------------------------------

def _verdict_replicas(service, wanted: int) -> Verdict:
    running = _wait(lambda: len(_running(service)) >= REPLICAS and _running(service), 40)
    count = len(running or _running(service))
    if wanted != REPLICAS:
        return failed(f"The spec asks for {wanted} replica(s); the lab asks for {REPLICAS}: "
                      f'"replicas": {REPLICAS} (docker service create --replicas {REPLICAS}).')
    if count < REPLICAS:
        states = sorted({t.get("Status", {}).get("State", "?") + ": "
                         + (t.get("Status", {}).get("Err") or t.get("Status", {}).get("Message", ""))
                         for t in service.tasks()})
        return failed(f"Only {count} of {REPLICAS} replicas ran within 40 s. The tasks said: "
                      f"{'; '.join(states)[:600]}. A task must keep running: its command may not "
                      "exit (e.g. exec sleep 3600 after the greeting).")
    return passed(f"{count} replicas run.")


def _verdict_update_config(spec: dict) -> Verdict:
    config = spec.get("UpdateConfig") or {}
    parallelism, delay = config.get("Parallelism"), (config.get("Delay") or 0) / SECOND
    if parallelism != PARALLELISM or delay != DELAY:
        return failed(f"The service updates {parallelism} task(s) at a time, {delay:g} s apart; "
                      f"the lab asks for {PARALLELISM} at a time, {DELAY:g} s apart: "
                      f'"update_config": {{"parallelism": {PARALLELISM}, "delay": {DELAY:g}}} '
                      f"(--update-parallelism {PARALLELISM} --update-delay {DELAY:g}s), so that "
                      "most replicas keep serving while one is replaced.")
    return passed(f"UpdateConfig: Parallelism {parallelism}, Delay {delay:g} s.")


def _verdict_label(spec: dict) -> Verdict:
    found = (spec.get("Labels") or {}).get(LABEL[0])
    if found != LABEL[1]:
        return failed(f"The service's label {LABEL[0]} is {found!r}, not {LABEL[1]!r}: "
                      f'"labels": {{"{LABEL[0]}": "{LABEL[1]}"}} (--label '
                      f"{LABEL[0]}={LABEL[1]}).")
    return passed(f"Labels: {LABEL[0]}={LABEL[1]}.")


def _verdict_update(service, parsed: dict, base_env: list[str], new_image: str) -> Verdict:
    """Roll the service to the ``update`` section (``new_image``: the new image's ID)."""
    if parsed["new_env"] == base_env and parsed["new_image"] == parsed["image"]:
        return failed('The "update" section changes nothing: a rolling update needs a new spec '
                      '(a new "env" value or "image").')
    try:
        service.reload()
        service.update(image=new_image, env=parsed["new_env"])
    except docker.errors.APIError as exc:
        return failed(f"The engine refused the update: {exc.explanation or exc}")

    def converged():
        service.reload()
        state = (service.attrs.get("UpdateStatus") or {}).get("State")
        if state in ("paused", "rollback_completed", "rollback_paused"):
            return state
        new = _running(service, parsed["new_env"], new_image)
        old = [t for t in _running(service) if t not in new]
        return state == "completed" and len(new) >= REPLICAS and not old and state

    state = _wait(converged, 60)
    if state != "completed":
        status = service.attrs.get("UpdateStatus") or {}
        return failed(f"The rolling update did not converge within 60 s: its state is "
                      f"{status.get('State') or 'unknown'} ({status.get('Message', '')}), and "
                      f"{len(_running(service, parsed['new_env'], new_image))} of "
                      f"{REPLICAS} replicas run the new spec.")
    return passed(f"the update completed: {REPLICAS} replicas run the new spec.")


def _verdict_restart(sandbox: Sandbox, service, spec: dict) -> Verdict:
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
                     >= REPLICAS, patience)
    if not replaced:
        return failed(f"A task's container was killed (exit code 137) and the swarm did not "
                      f"replace it within {patience:.0f} s: the restart condition is {condition!r}. "
                      '"restart_policy": {"condition": "on-failure"} (--restart-condition '
                      "on-failure) makes the swarm start a new task when one fails.")
    return passed(f"a killed task was replaced (restart condition {condition}).")


def judge(*, sandbox: Sandbox, answer, lab: Lab) -> dict[str, Verdict]:
    client = sandbox.client
    verdicts: dict[str, Verdict] = {}
    text, why = spec_text(answer)
    parsed, problem = parse_spec(text) if text is not None else (None, why)
    if parsed is None:
        verdicts["deploys"] = failed(problem)
        verdicts.update(not_judged(lab, "there is no valid service spec to deploy."))
        return verdicts
    # The course images by ID (on a sealed engine, the IDs the grader loaded): a swarm given an
    # ID neither asks a registry for it nor takes a tag that something else moved.
    image_ids = {}
    for image in IMAGES:
        try:
            image_ids[image] = sandbox.reference(image).id
        except docker.errors.ImageNotFound as exc:
            raise ImageError(f"The course image {image} is not on this engine.",
                             "Run `docklab images prepare`.") from exc
    limits = sandbox.limits
    with _Swarm(sandbox):
        node = (client.info().get("Swarm") or {}).get("NodeID")
        try:
            service = client.services.create(
                image_ids[parsed["image"]], parsed["command"],
                name=f"docklab-grade-{sandbox.run_id}",
                env=parsed["env"], labels={**parsed["labels"], **sandbox.labels("service")},
                container_labels=sandbox.labels("container"),
                mode=ServiceMode("replicated", replicas=parsed["replicas"]),
                update_config=parsed["update_config"], restart_policy=parsed["restart_policy"],
                resources=Resources(mem_limit=limits.memory,
                                    cpu_limit=int(limits.cpus * SECOND / 2)),
                init=True, stop_grace_period=SECOND,
                # The tasks stay on this engine, where the image IDs are.
                constraints=[f"node.id=={node}"] if node else None)
        except docker.errors.APIError as exc:
            verdicts["deploys"] = failed(f"The engine refused the service: "
                                         f"{exc.explanation or exc}")
            verdicts.update(not_judged(lab, "the service was not created."))
            return verdicts
        try:
            verdicts["deploys"] = passed(f"service {service.name} created.")
            verdicts["replicas_running"] = _verdict_replicas(service, parsed["replicas"])
            service.reload()
            spec = service.attrs.get("Spec") or {}
            verdicts["update_config"] = _verdict_update_config(spec)
            verdicts["labelled"] = _verdict_label(spec)
            if _running(service):
                verdicts["rolling_update"] = _verdict_update(
                    service, parsed, parsed["env"], image_ids[parsed["new_image"]])
                service.reload()
                verdicts["restarts_on_failure"] = _verdict_restart(
                    sandbox, service, service.attrs.get("Spec") or {})
            else:
                verdicts.update(not_judged(lab, "no replica ran, so there was nothing to update "
                                           "or to kill.", skip=tuple(verdicts)))
        finally:
            _remove_service(sandbox, service)
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


LAB = Lab("orchestration", "orchestration: a replicated service and a rolling update", CRITERIA,
          judge, base_image="busybox", images=IMAGES,
          hidden={"restarts_on_failure": restarts_only_on_failure}, sealed_ready=True,
          lesson=LESSON, topics=TOPICS)


grade = LAB.grade
self_check = LAB.self_check


def assert_restarts_only_on_failure(answer: str | os.PathLike = ".", **kwargs) -> None:
    """The notebook's hidden test: :func:`restarts_only_on_failure` on the answer's report."""
    verdict = restarts_only_on_failure(grade(answer, **kwargs).details)
    assert verdict.passed, verdict.feedback
