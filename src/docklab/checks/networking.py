"""Checks for the networking lab: repair the deck's "this doesn't work" set-up.

The deck's set-up: a web server (nginx) and a client (busybox) started on the default bridge, the
web server published as ``-p 8080:8080``. The client cannot find ``web`` by name (the default
bridge has no DNS for names), and the host's port 8080 leads nowhere (nginx listens on 80). The
learner writes the repaired set-up as the ``docker`` commands that start it, ``run.sh`` (the
notebook's ``%%writefile run.sh`` cell). The reference answer is in ``grader/source/networking/``
(instructors only: the learner's image holds no solution).

The client must reach the web server as ``http://web/`` and as ``http://shop/`` (its
configuration names the shop), and the host must reach it on port 8080.

**The answer path** (``docklab check networking <path>``) is a folder with ``run.sh``, or the lab
notebook, whose last ``%%writefile run.sh`` cell is the script.

The script is data (:mod:`docklab.checks.commands`): it never reaches a shell. Only blank lines,
comments, ``\\`` continuations and ``docker network create`` / ``docker volume create`` /
``docker run`` lines are accepted; anything else (another program, ``;``, ``$(...)``, ``-H``
before the command ...) refuses the whole script, naming the line, and nothing of it runs. Of the
accepted commands grading runs the first ``docker run`` of nginx (web) and of busybox (the
client) with ``--name``, ``--network``, ``--network-alias``, ``-p``, ``-e`` and the container's
command (``-d``, ``--rm``, ``-it``, ``--restart``, ``--label`` change nothing it looks at), and
leaves out the rest, saying so in ``config_valid``: privileges, the host's namespaces (``--network
host``, ``--pid host``: run with no network instead), bind mounts, other images, network driver
options.

How it is judged, on the engine: the commands run with the real docker CLI (the course image
``docklab/docker-cli``, in a container on the engine being judged, with that engine's socket
only), rewritten: networks and containers get names of the grading run's own (labelled), each
container's name in the script becomes a network alias on its user network (the engine resolves
names and aliases alike), the course labels and limits are added, and nginx and busybox are used
by the IDs the judge recorded. ``docker inspect`` tells which networks they share; ``docker exec``
in the client fetches ``http://web/`` and ``http://shop/``. Host ports are never taken while
grading (other learners may use 8080): the script's container ports are published on ports the
engine picks, on 127.0.0.1, a probe on the host network fetches the page through them, and the
host port the script asks for is read from the script. The graded tests' hidden test
(:func:`only_the_web_port`) is judged from the ports ``docker inspect`` showed published on web.

**Graded on a sealed engine** (:mod:`docklab.grading`): the judge talks only to the engine it is
given, so when a submission is graded, its network, containers and probes live in the
submission's own rootless engine, never on the grading host. What "the host" means changes there,
and what is judged instead: the engine's host is the sandbox, a network namespace of
rootlesskit's, which has no route out (slirp4netns, in a container with no network) and no port
driver (published ports are not forwarded anywhere beyond it). So a published port binds inside
that namespace, and the probe with ``--network host`` runs in it: it fetches the page through the
published port just as a program on a learner's machine would through ``-p``, and the grading
host's ports are never touched. A rootless engine on a cgroup v1 host enforces no per-container
memory, pids or CPU limits (``CgroupDriver: none``): the sealed engine as a whole is bounded
instead.

Equivalent CLI: ``docklab check networking <folder or notebook> [--json]``.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

import docker.errors
import requests.exceptions

from docklab.checks import commands as cmd
from docklab.checks.base import Criterion, Lab, Verdict, failed, not_judged, passed, unjudged
from docklab.checks.inside import ToolContainer
from docklab.checks.sandbox import Sandbox
from docklab.engine import exec_output
from docklab.errors import ImageError

WEB_IMAGE = "nginx"
CLIENT_IMAGE = "busybox"
SCRIPT = "run.sh"
HOST_PORT = 8080
WEB_PORT = "80/tcp"
NAMES = ("web", "shop")
#: How long nginx may take to answer on its port 80 after it started.
WEB_READY_SECONDS = 10.0
#: Which container of the set-up each image runs.
ROLES = {WEB_IMAGE: "web", CLIENT_IMAGE: "client"}
#: ``docker run`` options grading keeps as they are (``--name``, ``--network``,
#: ``--network-alias`` and ``--publish`` it rewrites).
KEPT = {"--env"}
#: Options that change nothing grading looks at: dropped without a word.
DROPPED = {"--detach", "--interactive", "--tty", "--restart", "--label", "--rm", "--name"}
#: nginx needs a few capabilities (chown, setuid/gid for its workers, bind to 80).
WEB_CAPABILITIES = ("CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE", "DAC_OVERRIDE")
LESSON = "04-networking"
TOPICS = {
    "config_valid": "docker run --network, --network-alias and -p",
    "user_network": "DNS on user-defined networks (section 3)",
    "reach_by_name": "DNS on user-defined networks (section 3)",
    "reach_by_alias": "network aliases (section 3)",
    "port_published": "publishing ports (section 4) and \"this doesn't work\" (section 6)",
}
_CONTAINER_ID = re.compile(r"^[0-9a-f]{64}$", re.MULTILINE)
_PORT = re.compile(r"^\d{1,5}$")

CRITERIA = [
    Criterion("config_valid", 1, "run.sh starts the web server (nginx) and the client (busybox) "
              "with docker commands grading runs as written", needs_image=False),
    Criterion("user_network", 1, "web and client share a user-defined network"),
    Criterion("reach_by_name", 2, "the client reaches http://web/"),
    Criterion("reach_by_alias", 1, "the client reaches http://shop/ (a network alias)"),
    Criterion("port_published", 2, f"the host reaches the web server on port {HOST_PORT}"),
]


# -- the script ---------------------------------------------------------------------------------

@dataclass
class Plan:
    """The script as grading runs it, and the set-up it describes (as the learner wrote it)."""

    argvs: list[list[str]] = field(default_factory=list)
    #: "web"/"client" → index in ``argvs`` of its docker run.
    roles: dict[str, int] = field(default_factory=dict)
    #: "web"/"client" → {"name", "aliases", "network" (as written; None: the default bridge),
    #: "ports" ({container port: host port}), "command"}.
    parsed: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: "web"/"client" → the container's name as grading runs it ("" when the script gives none).
    names: dict[str, str] = field(default_factory=dict)


def _publish(value: str) -> tuple[str, int | None] | None:
    """``-p [ip:][host:]container[/proto]`` → (container port, host port or None), or None."""
    spec, _, proto = value.partition("/")
    parts = spec.split(":")
    if proto not in ("", "tcp", "udp", "sctp") or len(parts) > 3:
        return None
    container, host = parts[-1], (parts[-2] if len(parts) > 1 else "")
    if not _PORT.match(container) or (host and not _PORT.match(host)):
        return None
    return f"{int(container)}/{proto or 'tcp'}", int(host) if host else None


def _network_of(rewrite: cmd.Rewrite, command: cmd.Command, name: str | None) -> list[str]:
    """``--network`` as grading gives it: a user network renamed, the default bridge as it is,
    the host's or another container's network never (no network instead)."""
    if name in (None, "", "bridge", "default"):
        return []
    if name == "none":
        return ["--network", "none"]
    if name == "host" or name.startswith("container:"):
        rewrite.leave_out(command, f"`--network {name}`", "it shares the host's (or another "
                          "container's) network, its ports and names, and is not what this lab "
                          "asks for; grading runs the container with no network.")
        return ["--network", "none"]
    if not cmd.valid_name(name):
        rewrite.leave_out(command, f"`--network {name}`", "not a valid network name.")
        return []
    return ["--network", rewrite.network(name)]


def _run(rewrite: cmd.Rewrite, command: cmd.Command, who: str, image_id: str,
         plan: Plan) -> list[str]:
    """The web server's or the client's ``docker run`` as grading runs it."""
    argv = rewrite.run_head(command)
    plan.names[who] = rewrite.containers.get(command.name, "")
    networks = command.values("--network")
    for extra in networks[1:]:
        rewrite.leave_out(command, f"`--network {extra}`", "grading connects a container to "
                          "its first --network only.")
    network = networks[0] if networks else None
    network_argv = _network_of(rewrite, command, network)
    aliases = [a for a in command.values("--network-alias") if cmd.valid_name(a)]
    ports: dict[str, int | None] = {}
    for option, value in command.options:
        if option in DROPPED or option in ("--network", "--network-alias"):
            continue
        if option == "--publish":
            published = _publish(value or "")
            if published is None:
                rewrite.leave_out(command, f"`-p {value}`", "it is not a port mapping "
                                  "(-p HOST:CONTAINER, e.g. -p 8080:80).")
                continue
            ports[published[0]] = published[1]
            # Never a host port while grading: the engine picks one, on 127.0.0.1.
            argv += ["--publish", f"127.0.0.1::{published[0]}"]
        elif option in KEPT:
            argv += [option] if value is None else [option, value]
        else:
            rewrite.leave_out(command, f"`{option}`", "this lab needs only --name, --network, "
                              "--network-alias and -p (and -d, -e, --rm); grading runs no "
                              "privileges, host namespaces, mounts or devices.")
    if network_argv[1:2] and network_argv[1] not in ("none",):
        # As the engine's DNS answers for a container's name on a user network, it answers for
        # the script's name here: grading's container has a name of its own.
        dns = [n for n in dict.fromkeys([command.name, *aliases]) if n and cmd.valid_name(n)]
        network_argv += [part for n in dns for part in ("--network-alias", n)]
    if who == "web":
        argv += [part for cap in WEB_CAPABILITIES for part in ("--cap-add", cap)]
    plan.parsed[who] = {"name": command.name, "aliases": aliases, "network": network,
                        "ports": ports, "command": command.args}
    return [*argv, *network_argv, image_id, *command.args]


def plan_script(script: cmd.Script, rewrite: cmd.Rewrite, images: dict[str, str]) -> Plan:
    """The script as grading runs it (``rewrite.left_out`` says what it leaves out)."""
    plan = Plan()
    for command in script.commands:
        if command.kind == "volume create":
            rewrite.leave_out(command, "the command", "this lab needs no volumes.")
            continue
        if command.kind == "network create":
            argv = rewrite.create(command)
            if argv is not None:
                plan.argvs.append(argv)
            continue
        image = command.image.removesuffix(":latest")
        who = ROLES.get(image)
        if who is None:
            rewrite.leave_out(command, "the command", f"it runs {command.image!r}; this lab's "
                              "containers are the web server (nginx) and the client (busybox).")
            continue
        if who in plan.roles:
            rewrite.leave_out(command, "the command", f"the {who} runs once; grading runs the "
                              f"first docker run of {image} only.")
            continue
        plan.roles[who] = len(plan.argvs)
        plan.argvs.append(_run(rewrite, command, who, images[image], plan))
    plan.problems = list(rewrite.left_out)
    return plan


# -- running it ---------------------------------------------------------------------------------

class _Setup:
    """The set-up's containers on the engine, started by the script's commands (grading's names,
    the script's names as aliases)."""

    def __init__(self, sandbox: Sandbox, plan: Plan, rewrite: cmd.Rewrite,
                 images: dict[str, str]):
        self.sandbox = sandbox
        self.plan = plan
        self.parsed = plan.parsed
        self.images = images                 # course image name → its ID on this engine
        self.networks = rewrite.networks     # the script's network name → the graded one
        self.rewrite = rewrite
        self.containers: dict[str, object] = {}
        self.errors: dict[str, str] = {}
        self.commands: list[dict] = []

    def _yours(self, text: str) -> str:
        """``text`` with grading's names put back to the script's (for feedback)."""
        for mine, graded in [*self.rewrite.networks.items(), *self.rewrite.containers.items()]:
            text = text.replace(graded, mine)
        for image, image_id in self.images.items():
            text = text.replace(image_id, image)
        return text

    def start(self, tool: ToolContainer) -> None:
        """Run the script's commands with the docker CLI in ``tool``."""
        done = cmd.run_commands(tool, self.plan.argvs)
        self.commands = [{"argv": " ".join(d["argv"][:2]), "status": d["status"],
                          "stderr": self._yours(d["stderr"][-300:])} for d in done]
        client = self.sandbox.client
        for who, index in self.plan.roles.items():
            result = done[index]
            if result["status"] != 0:
                said = (result["stderr"].strip() or result["stdout"].strip())[-400:]
                self.errors[who] = self._yours(said) or f"exit status {result['status']}"
                continue
            ids = _CONTAINER_ID.findall(result["stdout"])
            try:
                self.containers[who] = client.containers.get(self.plan.names[who] or ids[-1])
            except (docker.errors.NotFound, IndexError):
                self.errors[who] = "its container is gone (docker run --rm, and it stopped?)"

    def wait_for_web(self, seconds: float = WEB_READY_SECONDS) -> float | None:
        """Wait until nginx answers on port 80 inside web's own network namespace (a busybox
        probe with ``--network container:web``) → how long it took, or None when it did not."""
        web = self.containers.get("web")
        if web is None:
            return None
        started = time.monotonic()
        script = (f"timeout {int(seconds)} sh -c 'until timeout 2 wget -q -O /dev/null "
                  "http://127.0.0.1:80/; do sleep 0.25; done'")
        code, _ = self.probe(script, network_mode=f"container:{web.id}")
        return round(time.monotonic() - started, 2) if code == 0 else None

    def in_client(self, command: str) -> tuple[int | None, str]:
        """``docker exec client sh -c command`` → (exit code, output), for a command that always
        prints; (None, why) when the exec failed or said nothing, even when tried again. The
        client is the course's busybox, and its /etc/resolv.conf points at the engine's DNS when
        it is on a user network."""
        code, output = exec_output(self.containers["client"], ["sh", "-c", command])
        return code, output[-8192:]

    def probe(self, command: str, **where) -> tuple[int | None, str]:
        """Run a busybox probe (``sh -c command``) where told, bounded → (exit code, output)."""
        try:
            probe = self.sandbox.client.containers.run(
                self.images[CLIENT_IMAGE], ["sh", "-c", command], detach=True,
                labels=self.sandbox.labels("container"),
                **{**self.sandbox.container_limits(), **where})
        except docker.errors.APIError as exc:
            return None, exc.explanation or str(exc)
        try:
            try:
                code = probe.wait(timeout=20).get("StatusCode")
            except (requests.exceptions.RequestException, docker.errors.APIError):
                return None, "the probe did not finish"
            return code, probe.logs(tail=50)[-8192:].decode("utf-8", "replace")
        finally:
            self.sandbox.remove_container(probe.id)


def _fetch(url: str) -> str:
    return (f"timeout 5 wget -q -O /tmp/page {url} 2>/tmp/err; echo \"wget=$?\"; "
            "head -c 2048 /tmp/page; head -c 300 /tmp/err")


def _nginx(output: str) -> bool:
    return output.startswith("wget=0") and "nginx" in output.lower()


def _verdict_reach(setup: _Setup, name: str, parsed: dict) -> Verdict:
    if "client" not in setup.containers or "web" not in setup.containers:
        return unjudged("; ".join(f"{k} did not start: {v}"
                                  for k, v in setup.errors.items()))
    client = setup.containers["client"]
    client.reload()
    if client.status != "running":
        code = (client.attrs.get("State") or {}).get("ExitCode")
        return failed(f"The client is not running (it exited with status {code}): busybox with "
                      "no command runs sh, which ends at once without a terminal. Give it a "
                      "command that keeps it running: docker run -d ... busybox sleep infinity.")
    code, output = setup.in_client(_fetch(f"http://{name}/"))
    if code is None:
        return unjudged(f"http://{name}/ could not be fetched from the client: {output}")
    if _nginx(output):
        return passed(f"the client fetched nginx's page from http://{name}/.")
    web, client = parsed["web"], parsed["client"]
    err = output.partition("\n")[2].strip()[-200:]
    if (web["network"] or "bridge") != (client["network"] or "bridge"):
        why = (f"web is on {web['network'] or 'the default bridge'} and the client on "
               f"{client['network'] or 'the default bridge'}: containers on different networks "
               "cannot reach each other at all. Put both on the same user-defined network.")
    elif web["network"] in (None, "bridge", "default"):
        why = ("both are on the default bridge, where the engine's DNS does not answer for "
               "container names. Create a network of your own and put both on it.")
    elif name == "shop" and "shop" not in web["aliases"]:
        where = " (it is an alias of the client, so it points at the client itself)" \
            if "shop" in client["aliases"] else ""
        why = (f"shop is not a network alias of web{where}: give web the alias "
               "(docker run --network-alias shop).")
    elif name == "web" and web["name"] != "web":
        why = (f"the web container is called {web['name'] or '(no name)'!r}; the engine's DNS "
               "answers for a container's name, so call it web.")
    else:
        why = f"wget said: {err or output.strip()[:200]}"
    return failed(f"From the client, http://{name}/ did not answer: {why}")


def _verdict_network(setup: _Setup) -> Verdict:
    if "client" not in setup.containers or "web" not in setup.containers:
        return unjudged("; ".join(f"{k} did not start: {v}"
                                  for k, v in setup.errors.items()))
    nets = {}
    yours = {graded: name for name, graded in setup.networks.items()}  # grading's → the set-up's
    for who, container in setup.containers.items():
        container.reload()
        found = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
        nets[who] = {yours.get(net, net) for net in found}
    shared = (nets["web"] & nets["client"]) - {"bridge", "host", "none"}
    if shared:
        return passed("docker inspect: web and client share a user-defined network.")
    if nets["web"] & nets["client"] & {"bridge"}:
        return failed("docker inspect: web and client share only the default bridge, which has "
                      "no DNS for container names. docker network create a network of your own "
                      "and run both with --network on it.")
    return failed(f"docker inspect: web and client share no network (web: "
                  f"{', '.join(sorted(nets['web'])) or 'none'}; client: "
                  f"{', '.join(sorted(nets['client'])) or 'none'}).")


def _verdict_port(setup: _Setup, parsed: dict) -> Verdict:
    web = parsed["web"]
    ports = web["ports"]
    if not ports:
        return failed(f"web publishes no port: the host cannot reach it. Publish nginx's port "
                      f"80 on the host's {HOST_PORT}: docker run -p {HOST_PORT}:80.")
    if WEB_PORT not in ports:
        wrong = ", ".join(f"{h}→{c}" for c, h in ports.items())
        return failed(f"web publishes {wrong} (host → container), but nginx listens on port 80 "
                      "inside its container: the host's port leads to a port where nothing "
                      f"listens. -p {HOST_PORT}:80 maps the host's {HOST_PORT} to the "
                      "container's 80.")
    if ports[WEB_PORT] != HOST_PORT:
        return failed(f"web's port 80 is published on the host's port {ports[WEB_PORT]}; the "
                      f"shop's users come in on {HOST_PORT}: -p {HOST_PORT}:80.")
    container = setup.containers.get("web")
    if container is None:
        return unjudged(f"web did not start ({setup.errors.get('web', '')}).")
    container.reload()
    bound = ((container.attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(WEB_PORT)
    if not bound:
        return failed("docker inspect shows no published port 80 on web (a container on the "
                      "host or none network publishes nothing).")
    port = bound[0].get("HostPort")
    _, output = setup.probe(_fetch(f"http://127.0.0.1:{port}/"), network_mode="host")
    if not _nginx(output):
        return failed(f"web's port 80 was published, but nothing answered from the host: "
                      f"{output.strip()[:200]}")
    return passed(f"the host reaches nginx through the published port ({HOST_PORT}→80; "
                  f"{port} while grading, so no learner's {HOST_PORT} is taken).")


def judge(*, sandbox: Sandbox, answer, lab: Lab) -> dict[str, Verdict]:
    images = {}
    for image in (WEB_IMAGE, CLIENT_IMAGE, cmd.CLI_IMAGE):
        try:
            images[image] = sandbox.reference(image).id
        except docker.errors.ImageNotFound as exc:
            raise ImageError(f"The course image {image} is not on this engine, so the "
                             "networking lab cannot be judged.",
                             "Run `docklab images prepare`.") from exc
    script, refused = cmd.script_or_verdicts(answer, lab, SCRIPT)
    if script is None:
        return refused
    verdicts: dict[str, Verdict] = {}
    rewrite = cmd.Rewrite(sandbox)
    plan = plan_script(script, rewrite, images)
    missing = [f"{SCRIPT} has no docker run of {image} (the {who})."
               for image, who in ROLES.items() if who not in plan.roles]
    problems = missing + plan.problems
    verdicts["config_valid"] = failed(" ".join(problems)) if problems else passed(
        f"{SCRIPT} starts web (nginx) and client (busybox).")
    if missing:
        verdicts.update(not_judged(lab, f"{SCRIPT} does not start both containers."))
        return verdicts
    running = _Setup(sandbox, plan, rewrite, images)
    with ToolContainer(sandbox, cmd.CLI_IMAGE) as tool:
        running.start(tool)
    sandbox.details["commands"] = running.commands
    # nginx takes a moment to listen (longer on a busy machine): wait for it, bounded.
    sandbox.details["web_ready_seconds"] = running.wait_for_web()
    verdicts["user_network"] = _verdict_network(running)
    verdicts["reach_by_name"] = _verdict_reach(running, "web", plan.parsed)
    verdicts["reach_by_alias"] = _verdict_reach(running, "shop", plan.parsed)
    verdicts["port_published"] = _verdict_port(running, plan.parsed)
    sandbox.details["published"] = _published(running, plan.parsed)
    return verdicts


def _published(setup: _Setup, parsed: dict) -> list[str]:
    """The container ports web publishes, as ``docker inspect`` shows them (the set-up's, when
    web did not start)."""
    container = setup.containers.get("web")
    if container is None:
        return sorted(parsed["web"]["ports"])
    try:
        container.reload()
    except docker.errors.APIError:
        return sorted(parsed["web"]["ports"])
    ports = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    return sorted(port for port, bindings in ports.items() if bindings)


def only_the_web_port(details: dict) -> Verdict:
    """web publishes nginx's port 80 and nothing else: every published port is a door in. The
    hidden test of port_published, from the ports the judge saw published
    (``details["published"]``)."""
    published = details.get("published") or []
    if published == [WEB_PORT]:
        return passed(f"web publishes {WEB_PORT} only.")
    return failed(
        f"web publishes {', '.join(published) or 'nothing'}: only 80/tcp has a server behind "
        "it. The deck's 8080:8080 is the broken mapping; remove it rather than add the right one "
        f"next to it. (Lesson {LESSON}: publishing ports.)")


LAB = Lab("networking", "networking: repair \"this doesn't work\"", CRITERIA, judge,
          base_image=CLIENT_IMAGE, images=(WEB_IMAGE, cmd.CLI_IMAGE),
          hidden={"port_published": only_the_web_port}, sealed_ready=True,
          lesson=LESSON, topics=TOPICS)


grade = LAB.grade
self_check = LAB.self_check


def assert_publishes_only_the_web_port(answer: str | os.PathLike = ".") -> None:
    """web publishes nginx's port 80 and nothing else: the hidden test of port_published as an
    assert (:func:`only_the_web_port`, which grading applies)."""
    report = grade(answer)
    assert report["port_published"].passed, "web's port 80 is not published on 8080."
    verdict = only_the_web_port(report.details)
    assert verdict.passed, verdict.feedback
