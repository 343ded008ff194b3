"""classroom/kubernetes/values.yaml, the Zero to JupyterHub values of a classroom on Kubernetes.

Two checks, each shown refusing broken files:

* the chart's own: the values merged over the chart's defaults as helm merges them, validated with
  ``jsonschema`` against the schema the chart ships (tests/unit/data/z2jh-4.4.0/), which is what
  ``helm template`` does first (there is no helm binary here). It refuses misspelt keys and wrong
  types, but it does not look inside ``extraContainers``, ``initContainers`` or ``extraVolumes``
  (plain arrays to it): a socket of the node's engine passes it;
* the classroom's: what makes each learner's engine private and bounded (:func:`classroom_problems`).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from docklab.classroom import engine
from docklab.classroom.image import LEARNER_IMAGE

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "classroom" / "kubernetes" / "values.yaml"
CHART = Path(__file__).resolve().parent / "data" / "z2jh-4.4.0"
#: The label that lets a pod reach learners' servers (the hub and the proxy carry it).
SINGLEUSER_ACCESS = "hub.jupyter.org/network-access-singleuser"
#: The names KubeSpawner fills in every string of the containers and environment it is given
#: (``str.format``, kubespawner's ``_expand_user_properties``): any other ``{...}`` fails a spawn.
SPAWNER_NAMES = ("userid", "unescaped_username", "unescaped_servername", "hubnamespace", "username",
                 "servername", "user_server", "safe_username", "safe_servername",
                 "safe_user_server", "escaped_username", "escaped_servername",
                 "escaped_user_server", "pod_name", "pvc_name", "namespace")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def helm_merge(defaults: dict, values: dict) -> dict:
    """The values helm renders and validates: maps merged key by key, the user's value wins, a
    user's null removes the chart's key, lists replaced whole."""
    merged = copy.deepcopy(defaults)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def schema_errors(values: dict) -> list[str]:
    """What the chart's schema refuses in ``values`` (merged over the chart's defaults)."""
    validator = jsonschema.Draft7Validator(load(CHART / "values.schema.yaml"))
    merged = helm_merge(load(CHART / "values.yaml"), values)
    return sorted(f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
                  for error in validator.iter_errors(merged))


_UNITS = {"": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
          "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def quantity(text) -> float:
    """A Kubernetes quantity ("10Gi", "256M", "50m", 1) as a number."""
    match = re.fullmatch(r"([0-9.]+)(m|[kMGT]i?|)", str(text))
    assert match, f"not a quantity: {text!r}"
    number, unit = float(match.group(1)), match.group(2)
    return number / 1000 if unit == "m" else number * _UNITS[unit]


def _tcp_hosts(args: list[str]) -> list[str]:
    """The tcp:// addresses a dockerd command line listens on."""
    hosts = []
    for i, arg in enumerate(args):
        value = arg.split("=", 1)[1] if arg.startswith("--host=") else (
            args[i + 1] if arg in ("-H", "--host") and i + 1 < len(args) else "")
        if value.startswith("tcp://"):
            hosts.append(value)
    return hosts


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)
    elif isinstance(node, str):
        yield node


def _unexpandable(node) -> list[str]:
    """Strings KubeSpawner's expansion would fail on (``${VAR}`` in a script: write ``${{VAR}}``)."""
    names = dict.fromkeys(SPAWNER_NAMES, "x")
    bad = []
    for text in _strings(node):
        try:
            text.format(**names)
        except (KeyError, IndexError, ValueError):
            bad.append(text)
    return bad


def _has_password(node, path="") -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if re.search(r"password|secret", str(key), re.IGNORECASE) and value:
                found.append(f"{path}{key}")
            found += _has_password(value, f"{path}{key}.")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += _has_password(item, f"{path}{i}.")
    return found


def classroom_problems(values: dict) -> list[str]:
    """The classroom's rules that ``values`` breaks (after helm's merge), one sentence each."""
    merged = helm_merge(load(CHART / "values.yaml"), values)
    user = merged["singleuser"]
    problems = []
    containers = user.get("extraContainers") or []
    inits = user.get("initContainers") or []
    volumes = {v.get("name"): v for v in (user["storage"].get("extraVolumes") or [])}

    # The learner's image and their own engine beside it, on the pod's loopback only.
    if not str(user["image"]["name"]).endswith("/" + LEARNER_IMAGE.split(":")[0]):
        problems.append(f"the learner's image is {user['image']['name']}, not the course's "
                        f"{LEARNER_IMAGE.split(':')[0]}")
    engines = [c for c in containers
               if str(c.get("image", "")).endswith("/" + engine.ENGINE_IMAGES["dind"])]
    want = engine.docker_host("dind")
    if (user.get("extraEnv") or {}).get("DOCKER_HOST") != want:
        problems.append(f"DOCKER_HOST is not {want} (the learner's own engine)")
    if len(engines) != 1:
        problems.append(f"{len(engines)} engine sidecars (docker:dind in extraContainers), not 1")
    for sidecar in engines:
        hosts = _tcp_hosts(list(sidecar.get("command") or []) + list(sidecar.get("args") or []))
        if want not in hosts:
            problems.append(f"the engine does not listen on {want}")
        for host in hosts:
            if not host.startswith("tcp://127.0.0.1:"):
                problems.append(f"the engine listens on {host}: beyond the pod's loopback")
        if sidecar.get("ports"):
            problems.append("the engine's container declares ports")
        limits = (sidecar.get("resources") or {}).get("limits") or {}
        for resource in ("cpu", "memory", "ephemeral-storage"):
            if resource not in limits:
                problems.append(f"the engine has no {resource} limit")
        data = [m for m in sidecar.get("volumeMounts") or [] if m.get("mountPath") == "/var/lib/docker"]
        volume = volumes.get(data[0]["name"]) if data else None
        size = ((volume or {}).get("emptyDir") or {}).get("sizeLimit")
        if size is None:
            problems.append("the engine's data is not an emptyDir with a sizeLimit")
        elif "ephemeral-storage" in limits and quantity(limits["ephemeral-storage"]) < quantity(size):
            problems.append("the engine's ephemeral-storage limit is below its data's sizeLimit: "
                            "the kubelet would evict the pod before the volume is full")
        # The course images, loaded into that same volume before the engine starts.
        loaders = [c for c in inits
                   if data and any(m.get("name") == data[0]["name"] for m in c.get("volumeMounts") or [])
                   and "docker load" in " ".join(c.get("command") or []) + " ".join(c.get("args") or [])
                   and engine.IMAGES_TAR in " ".join(c.get("command") or []) + " ".join(c.get("args") or [])]
        if not loaders:
            problems.append("no init container loads the course images into the engine's data")

    # KubeSpawner formats these strings with the learner's names before it makes the pod.
    for text in _unexpandable([containers, inits, user.get("extraEnv")]):
        problems.append(f"KubeSpawner cannot expand {text.strip().splitlines()[0]!r}...: "
                        "double the braces that are not its {username} and the like")

    # Nothing of the node: no hostPath (its engine's socket least of all), no host namespaces.
    for name, volume in volumes.items():
        if "hostPath" in volume:
            problems.append(f"volume {name} is a hostPath ({volume['hostPath'].get('path')})")
    mounts = [(c.get("name"), m) for c in containers + inits for m in c.get("volumeMounts") or []]
    mounts += [("notebook", m) for m in user["storage"].get("extraVolumeMounts") or []]
    for container, mount in mounts:
        if str(mount.get("mountPath", "")).endswith("docker.sock"):
            problems.append(f"{container} mounts a docker socket at {mount['mountPath']}")
    pod = user.get("extraPodConfig") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            problems.append(f"the pod shares the node's namespace ({key})")
    for container in containers + inits:
        if any("hostPort" in port for port in container.get("ports") or []):
            problems.append(f"{container.get('name')} takes a port of the node (hostPort)")

    # JupyterLab's own bounds.
    if user["memory"].get("limit") is None or user["cpu"].get("limit") is None:
        problems.append("JupyterLab has no memory or CPU limit")
    if "ephemeral-storage" not in (user["extraResource"].get("limits") or {}):
        problems.append("JupyterLab has no ephemeral-storage limit")

    # Idle servers stopped.
    cull = merged["cull"]
    if not cull.get("enabled") or not cull.get("timeout"):
        problems.append("the idle culler is off")

    # A learner's pod reaches no other learner's: the chart's NetworkPolicy, no doors added.
    policy = user["networkPolicy"]
    if not policy.get("enabled"):
        problems.append("no NetworkPolicy for learners' pods")
    if policy.get("ingress") or policy.get("allowedIngressPorts"):
        problems.append("learners' pods take ingress beyond the hub's and the proxy's")
    if policy.get("interNamespaceAccessLabels") != "ignore":
        problems.append("pods of other namespaces may be let in by label")
    rules = policy.get("egressAllowRules") or {}
    if rules.get("privateIPs") or rules.get("cloudMetadataServer"):
        problems.append("learners' pods may reach private addresses (other pods) or the metadata "
                        "server")
    if SINGLEUSER_ACCESS in (user.get("extraLabels") or {}):
        problems.append(f"learners' pods carry {SINGLEUSER_ACCESS}: they could reach each other")

    # Who logs in: a real authenticator, its secrets given at install, not in git.
    authenticator = merged["hub"]["config"].get("JupyterHub", {}).get("authenticator_class")
    if authenticator in (None, "dummy", "null"):
        problems.append(f"the authenticator is {authenticator!r}: anyone could log in")
    for key in _has_password(values):
        problems.append(f"{key} holds a secret: give it with --set at install")
    return problems


@pytest.fixture
def values() -> dict:
    return load(VALUES)


def _engine(values: dict) -> dict:
    return next(c for c in values["singleuser"]["extraContainers"] if c["name"] == "engine")


def test_the_charts_own_defaults_pass_its_schema():
    assert schema_errors({}) == []


def test_the_classroom_values_pass_the_charts_schema(values):
    assert schema_errors(values) == []


def test_the_classroom_values_keep_the_classrooms_rules(values):
    assert classroom_problems(values) == []


def test_helm_merge_keeps_the_charts_defaults_replaces_lists_and_drops_nulls():
    merged = helm_merge({"a": {"b": 1, "c": 2}, "l": [1, 2], "d": 4},
                        {"a": {"b": 9}, "l": [3], "d": None})
    assert merged == {"a": {"b": 9, "c": 2}, "l": [3]}


@pytest.mark.parametrize("path, wrong", [
    (("singleuser", "extraContainers"), "extraContainer"),
    (("cull", "enabled"), "enable"),
    (("singleuser", "memory", "limit"), "limt"),
    (("singleuser", "networkPolicy", "egressAllowRules", "privateIPs"), "privateIps"),
])
def test_a_misspelt_key_is_refused_by_the_charts_schema(values, path, wrong):
    parent = values
    for key in path[:-1]:
        parent = parent[key]
    parent[wrong] = parent.pop(path[-1])
    errors = schema_errors(values)
    assert errors and any(repr(wrong) in error for error in errors), errors


def test_a_wrong_type_is_refused_by_the_charts_schema(values):
    values["singleuser"]["cpu"]["limit"] = "one core"
    assert any(error.startswith("singleuser.cpu.limit:") for error in schema_errors(values))


def test_the_nodes_docker_socket_passes_the_charts_schema_but_not_the_classrooms(values):
    values["singleuser"]["storage"]["extraVolumes"].append(
        {"name": "docker-sock", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}})
    _engine(values)["volumeMounts"].append(
        {"name": "docker-sock", "mountPath": "/var/run/docker.sock"})
    assert schema_errors(values) == []
    problems = classroom_problems(values)
    assert "volume docker-sock is a hostPath (/var/run/docker.sock)" in problems
    assert "engine mounts a docker socket at /var/run/docker.sock" in problems


def test_an_engine_listening_beyond_the_pods_loopback_is_refused(values):
    args = _engine(values)["args"]
    args[args.index("--host=tcp://127.0.0.1:2375")] = "--host=tcp://0.0.0.0:2375"
    problems = classroom_problems(values)
    assert "the engine listens on tcp://0.0.0.0:2375: beyond the pod's loopback" in problems
    assert "the engine does not listen on tcp://127.0.0.1:2375" in problems


def test_a_pod_without_the_engine_sidecar_is_refused(values):
    values["singleuser"]["extraContainers"] = []
    assert "0 engine sidecars (docker:dind in extraContainers), not 1" in classroom_problems(values)


def test_missing_limits_are_refused(values):
    del _engine(values)["resources"]["limits"]["memory"]
    values["singleuser"]["memory"]["limit"] = None  # helm drops the chart's key: no limit
    values["singleuser"]["extraResource"]["limits"] = {}
    _engine(values)["resources"]["limits"]["ephemeral-storage"] = "1Gi"
    problems = classroom_problems(values)
    assert "the engine has no memory limit" in problems
    assert "JupyterLab has no memory or CPU limit" in problems
    assert "JupyterLab has no ephemeral-storage limit" in problems
    assert any("below its data's sizeLimit" in p for p in problems)


def test_the_course_images_must_be_loaded_before_the_engine_starts(values):
    values["singleuser"]["initContainers"] = []
    assert ("no init container loads the course images into the engine's data"
            in classroom_problems(values))


def test_a_brace_kubespawner_cannot_fill_in_is_refused(values):
    init = values["singleuser"]["initContainers"][0]
    init["command"][2] = init["command"][2].replace('"$engine"', '"${engine}"')
    problems = classroom_problems(values)
    assert any(p.startswith("KubeSpawner cannot expand 'set -eu'") for p in problems), problems
    init["command"][2] = init["command"][2].replace('"${engine}"', '"${{engine}}"')
    assert classroom_problems(values) == []


def test_an_idle_culler_turned_off_is_refused(values):
    values["cull"]["enabled"] = False
    assert "the idle culler is off" in classroom_problems(values)


@pytest.mark.parametrize("edit, problem", [
    (lambda p: p.update(enabled=False), "no NetworkPolicy for learners' pods"),
    (lambda p: p.update(allowedIngressPorts=[2375]),
     "learners' pods take ingress beyond the hub's and the proxy's"),
    (lambda p: p["egressAllowRules"].update(privateIPs=True),
     "learners' pods may reach private addresses (other pods) or the metadata server"),
    (lambda p: p.update(interNamespaceAccessLabels="accept"),
     "pods of other namespaces may be let in by label"),
])
def test_a_network_policy_that_lets_learners_reach_each_other_is_refused(values, edit, problem):
    edit(values["singleuser"]["networkPolicy"])
    assert schema_errors(values) == []
    assert problem in classroom_problems(values)


def test_learners_pods_labelled_for_access_to_learners_pods_are_refused(values):
    values["singleuser"]["extraLabels"] = {SINGLEUSER_ACCESS: "true"}
    assert any(SINGLEUSER_ACCESS in p for p in classroom_problems(values))


def test_the_dummy_authenticator_and_a_committed_password_are_refused(values):
    values["hub"]["config"]["JupyterHub"]["authenticator_class"] = "dummy"
    values["hub"]["config"]["SharedPasswordAuthenticator"] = {"user_password": "hunter22"}
    problems = classroom_problems(values)
    assert "the authenticator is 'dummy': anyone could log in" in problems
    assert ("hub.config.SharedPasswordAuthenticator.user_password holds a secret: give it with "
            "--set at install") in problems


def test_dropping_the_authenticator_falls_back_to_the_charts_dummy(values):
    del values["hub"]["config"]["JupyterHub"]["authenticator_class"]
    assert "the authenticator is 'dummy': anyone could log in" in classroom_problems(values)
