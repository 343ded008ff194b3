"""Checks for the networking lab: repair the deck's "this doesn't work" set-up.

The deck's set-up: a web server (nginx) and a client (busybox) started on the default bridge, the
web server published as ``-p 8080:8080``. The client cannot find ``web`` by name (the default
bridge has no DNS for names), and the host's port 8080 leads nowhere (nginx listens on 80). The
learner writes the repaired set-up as plain values:

    SETUP = {
        "network": "shopnet",
        "web": {"image": "nginx", "name": "web", "network": "shopnet", "aliases": ["shop"],
                "ports": {"80/tcp": 8080}},
        "client": {"image": "busybox", "name": "client", "network": "shopnet",
                   "command": ["sleep", "infinity"]},
    }

(the keyword arguments of the SDK's ``containers.run``, plus ``aliases``: ``docker run --network
shopnet --network-alias shop``). The client must reach the web server as ``http://web/`` and as
``http://shop/`` (its configuration names the shop), and the host must reach it on port 8080.

**The answer path** (``docklab check networking <path>``) is a folder with ``setup.json`` (the
notebook's ``networking.record_setup(SETUP)`` cell writes it), or the lab notebook, whose
``SETUP = {...}`` cell is read as a literal (never executed).

How it is judged, on the engine: the network is created under a name of the grading run's own
(labelled); both containers are run as the set-up says, each under a unique name, with its name
in the set-up given to the engine's DNS as a network alias (the engine resolves names and
aliases alike); ``docker inspect`` tells which networks they share; ``docker exec`` in the
client (always the course's busybox) fetches ``http://web/`` and ``http://shop/``. Host ports
are never taken while grading (other learners may use 8080): the set-up's container ports are
published on ports the engine picks, on 127.0.0.1, a probe on the host network fetches the page
through them, and the host port the set-up asks for is read from the set-up. The graded tests'
hidden test (:func:`only_the_web_port`) is judged from the ports ``docker inspect`` showed
published on web.

**Graded on a sealed engine** (:mod:`docklab.grading`): the judge talks only to the engine it is
given, so when a submission is graded, its network, containers and probes live in the
submission's own rootless engine, never on the grading host; the set-up itself is only ever read
as data. nginx and busybox are used by the IDs the grader loaded, never by a tag. What "the host"
means changes there, and what is judged instead: the engine's host is the sandbox, a network
namespace of rootlesskit's, which has no route out (slirp4netns, in a container with no network)
and no port driver (published ports are not forwarded anywhere beyond it). So a published port
binds inside that namespace, and the probe with ``--network host`` runs in it: it fetches the page
through the published port just as a program on a learner's machine would through ``-p``, and the
grading host's ports are never touched. A set-up asking for ``--network host`` is still run with
no network (it is not what the lab asks for). A rootless engine on a cgroup v1 host enforces no
per-container memory, pids or CPU limits (``CgroupDriver: none``): the sealed engine as a whole is
bounded instead.

Equivalent CLI: ``docklab check networking <folder or notebook> [--json]``.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import docker.errors
import requests.exceptions

from docklab.checks.base import Criterion, Lab, Verdict, failed, not_judged, passed, unjudged
from docklab.checks.recorded import notebook_literals
from docklab.checks.sandbox import Sandbox
from docklab.errors import ImageError

WEB_IMAGE = "nginx"
CLIENT_IMAGE = "busybox"
SETUP_FILE = "setup.json"
HOST_PORT = 8080
WEB_PORT = "80/tcp"
NAMES = ("web", "shop")
#: How long nginx may take to answer on its port 80 after it started.
WEB_READY_SECONDS = 10.0
KEYS = {"image", "name", "network", "aliases", "ports", "command", "detach"}
LESSON = "04-networking"
TOPICS = {
    "config_valid": "docker run --network, --network-alias and -p",
    "user_network": "DNS on user-defined networks (section 3)",
    "reach_by_name": "DNS on user-defined networks (section 3)",
    "reach_by_alias": "network aliases (section 3)",
    "port_published": "publishing ports (section 4) and \"this doesn't work\" (section 6)",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

CRITERIA = [
    Criterion("config_valid", 1, "SETUP describes the web server (nginx) and the client "
              "(busybox)", needs_image=False),
    Criterion("user_network", 1, "web and client share a user-defined network"),
    Criterion("reach_by_name", 2, "the client reaches http://web/"),
    Criterion("reach_by_alias", 1, "the client reaches http://shop/ (a network alias)"),
    Criterion("port_published", 2, f"the host reaches the web server on port {HOST_PORT}"),
]


def record_setup(setup: dict, folder: str | os.PathLike = ".") -> Path:
    """Write the set-up next to the notebook (``setup.json``), where grading reads it."""
    path = Path(folder) / SETUP_FILE
    path.write_text(json.dumps(setup, indent=2) + "\n")
    return path


def recorded_setup(answer) -> tuple[dict | None, str]:
    if answer.kind == "notebook":
        values, why = notebook_literals(Path(answer.source), ("SETUP",))
        return (values.get("SETUP"), why) if values else (None, why)
    data = answer.files.get(SETUP_FILE)
    if data is None:
        return None, (f"There is no {SETUP_FILE} in {answer.source}: run the notebook's cell "
                      "networking.record_setup(SETUP), which writes it.")
    try:
        return json.loads(data.decode("utf-8", "replace")), ""
    except ValueError:
        return None, f"{SETUP_FILE} is not valid JSON."


def _ports(value, problems: list[str], who: str) -> dict[str, int | None]:
    """``{"80/tcp": 8080}`` (also ``"8080:80"`` strings) → {container port: host port}."""
    result: dict[str, int | None] = {}
    items = value.items() if isinstance(value, dict) else (
        [tuple(reversed(str(v).rsplit(":", 1))) if ":" in str(v) else (str(v), None)
         for v in value] if isinstance(value, list) else [])
    if value and not items:
        problems.append(f"{who}: ports should be a dict like {{\"80/tcp\": 8080}}.")
    for container_port, host in items:
        port = str(container_port)
        if "/" not in port:
            port += "/tcp"
        if not re.match(r"^\d{1,5}/(tcp|udp)$", port):
            problems.append(f"{who}: {container_port!r} is not a container port.")
            continue
        if isinstance(host, (list, tuple)):
            host = host[-1] if host else None
        try:
            result[port] = int(str(host).rsplit(":", 1)[-1]) if host not in (None, "") else None
        except ValueError:
            problems.append(f"{who}: host port {host!r} is not a number.")
    return result


def parse_setup(setup) -> tuple[dict, list[str]]:
    """The set-up as {"network": str|None, "web": {...}, "client": {...}}, and its problems."""
    problems: list[str] = []
    if not isinstance(setup, dict):
        return {}, [f"SETUP should be a dict, not {type(setup).__name__}."]
    network = setup.get("network")
    if network is not None and (not isinstance(network, str) or not _NAME.match(network)):
        problems.append(f"network {network!r} is not a valid network name.")
        network = None
    parsed: dict = {"network": network}
    for who, image in (("web", WEB_IMAGE), ("client", CLIENT_IMAGE)):
        spec = setup.get(who)
        if not isinstance(spec, dict):
            problems.append(f"SETUP has no {who!r} dict (the {who} container's settings).")
            return parsed, problems
        unknown = sorted(set(map(str, spec)) - KEYS)
        if unknown:
            problems.append(f"{who}: keys this lab does not use: {', '.join(unknown)} (it takes "
                            f"{', '.join(sorted(KEYS))}); grading leaves them out.")
        if str(spec.get("image", "")).removesuffix(":latest") != image:
            problems.append(f"{who}: image is {spec.get('image')!r}; the {who} runs {image}.")
        name = spec.get("name") or ""
        if name and (not isinstance(name, str) or not _NAME.match(name)):
            problems.append(f"{who}: {name!r} is not a valid container name.")
            name = ""
        aliases = spec.get("aliases") or []
        aliases = [aliases] if isinstance(aliases, str) else aliases
        aliases = [a for a in aliases if isinstance(a, str) and _NAME.match(a)] \
            if isinstance(aliases, list) else []
        net = spec.get("network")
        if net is not None and not isinstance(net, str):
            net = None
        if net == "host":
            problems.append(f"{who}: the host's network (--network host) shares the host's "
                            "ports and names with the container, and is not what this lab asks "
                            "for; grading runs it without a network.")
        command = spec.get("command")
        if command is not None and not (isinstance(command, list)
                                        and all(isinstance(c, str) for c in command)):
            command = None if not isinstance(command, str) else command.split()
        parsed[who] = {"name": name, "aliases": aliases, "network": net,
                       "ports": _ports(spec.get("ports") or {}, problems, who),
                       "command": command}
    return parsed, problems


class _Setup:
    """The set-up's containers on the engine (unique names, the set-up's names as aliases)."""

    def __init__(self, sandbox: Sandbox, parsed: dict, images: dict[str, str]):
        self.sandbox = sandbox
        self.parsed = parsed
        self.images = images                 # course image name → its ID on this engine
        self.networks: dict[str, str] = {}   # the set-up's network name → the graded one
        self.containers: dict[str, object] = {}
        self.errors: dict[str, str] = {}

    def _network(self, name: str | None) -> str | None:
        if name in (None, "", "bridge", "default"):
            return None
        if name in ("host", "none"):
            # Never the host's network while grading: nginx would take the host's port 80.
            return "none"
        if name not in self.networks:
            graded = f"docklab-grade-{self.sandbox.run_id}-{name}"[:120]
            self.sandbox.client.networks.create(graded, driver="bridge",
                                                labels=self.sandbox.labels("network"))
            self.networks[name] = graded
        return self.networks[name]

    def start(self, who: str, image: str, default_command: list[str] | None) -> None:
        spec = self.parsed[who]
        client = self.sandbox.client
        network = self._network(spec["network"])
        dns_names = [n for n in [spec["name"], *spec["aliases"]] if n]
        kwargs = self.sandbox.container_limits()
        if who == "web":
            # nginx needs a few capabilities (chown, setuid/gid for its workers, bind to 80).
            kwargs["cap_add"] = ["CHOWN", "SETUID", "SETGID", "NET_BIND_SERVICE",
                                 "DAC_OVERRIDE"]
        ports = {port: ("127.0.0.1", None) for port in spec["ports"]}
        try:
            container = client.containers.create(
                self.images[image], spec["command"] or default_command, detach=True,
                name=f"docklab-grade-{self.sandbox.run_id}-{who}",
                labels=self.sandbox.labels("container"), ports=ports or None,
                network=network if network in ("host", "none") else None, **kwargs)
            if network not in (None, "host", "none"):
                # As `docker run --network <net> --network-alias ...`: the set-up's name and
                # aliases are what the engine's DNS answers for on that network.
                client.api.disconnect_container_from_network(container.id, "bridge")
                client.api.connect_container_to_network(container.id, network,
                                                        aliases=dns_names or None)
            container.start()
            self.containers[who] = container
        except docker.errors.APIError as exc:
            self.errors[who] = exc.explanation or str(exc)

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

    def in_client(self, command: str) -> str:
        """``docker exec client sh -c command``: the client is the course's busybox, and its
        /etc/resolv.conf points at the engine's DNS when it is on a user network."""
        try:
            result = self.containers["client"].exec_run(["sh", "-c", command])
        except docker.errors.APIError as exc:
            return f"the client is not running: {exc.explanation or exc}"
        return result.output[-8192:].decode("utf-8", "replace")

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
    output = setup.in_client(_fetch(f"http://{name}/"))
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
               "(\"aliases\": [\"shop\"], as docker run --network-alias shop).")
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
                      f"80 on the host's {HOST_PORT}: \"ports\": {{\"80/tcp\": {HOST_PORT}}} "
                      f"(docker run -p {HOST_PORT}:80).")
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
    for image in (WEB_IMAGE, CLIENT_IMAGE):
        try:
            images[image] = sandbox.reference(image).id
        except docker.errors.ImageNotFound as exc:
            raise ImageError(f"The course image {image} is not on this engine, so the "
                             "networking lab cannot be judged.",
                             "Run `docklab images prepare`.") from exc
    verdicts: dict[str, Verdict] = {}
    setup, why = recorded_setup(answer)
    if setup is None:
        verdicts["config_valid"] = failed(why)
        verdicts.update(not_judged(lab, "there is no set-up."))
        return verdicts
    parsed, problems = parse_setup(setup)
    verdicts["config_valid"] = failed(" ".join(problems)) if problems else passed(
        "SETUP describes web (nginx) and client (busybox).")
    if "web" not in parsed or "client" not in parsed:
        verdicts.update(not_judged(lab, "SETUP does not describe both containers."))
        return verdicts
    running = _Setup(sandbox, parsed, images)
    running.start("web", WEB_IMAGE, None)
    running.start("client", CLIENT_IMAGE, ["sleep", "infinity"])
    # nginx takes a moment to listen (longer on a busy machine): wait for it, bounded.
    sandbox.details["web_ready_seconds"] = running.wait_for_web()
    verdicts["user_network"] = _verdict_network(running)
    verdicts["reach_by_name"] = _verdict_reach(running, "web", parsed)
    verdicts["reach_by_alias"] = _verdict_reach(running, "shop", parsed)
    verdicts["port_published"] = _verdict_port(running, parsed)
    sandbox.details["published"] = _published(running, parsed)
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
          base_image=CLIENT_IMAGE, images=(WEB_IMAGE,),
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
