"""Pure logic of the visualizers (no engine): parsers, models, desired-vs-actual, rendering."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import pytest

from docklab.widgets.build import BuildKitModel, BuildModel, BuildView, buildx_command
from docklab.widgets.compose import compare, desired_state, interpolate, project_name
from docklab.widgets.inside_outside import parse_ip_addr, parse_limits, parse_mounts, parse_ps
from docklab.widgets.layers import history_entries, shared_prefix
from docklab.widgets.networks import parse_probe, probe_script
from docklab.widgets.swarm import quorum
from docklab.widgets.volumes import container_mounts, is_anonymous
from tests.unit._widget_fakes import FakeClient

# --- inside vs outside -------------------------------------------------------------------------


def test_ip_addr_and_ps_parsing():
    text = ("1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
            "17: eth0@if18    inet 172.17.0.2/16 brd 172.17.255.255 scope global eth0\\ x\n")
    assert parse_ip_addr(text) == [{"name": "lo", "address": "127.0.0.1/8"},
                                   {"name": "eth0", "address": "172.17.0.2/16"}]
    ps = "PID   USER     COMMAND\n    1 root     sleep 3600\n   12 root     ps -o pid,user,args\n"
    assert parse_ps(ps)[0] == {"pid": 1, "user": "root", "command": "sleep 3600"}
    plain = "PID   USER     TIME  COMMAND\n    1 root      0:00 sleep 600\n"
    assert parse_ps(plain)[0]["command"] == "sleep 600"


def test_mounts_leave_out_proc_sys_dev():
    mounts = parse_mounts("overlay / overlay rw 0 0\nproc /proc proc rw 0 0\n"
                          "tmpfs /dev tmpfs rw 0 0\n/dev/vda /data ext4 rw 0 0\n")
    assert [m["target"] for m in mounts] == ["/", "/data"]


def test_cgroup_limits_v1_and_v2():
    assert parse_limits(["v1", "67108864", "50000", "100000", "max"]) == {
        "cgroup": "v1", "memory": "64 MiB", "cpus": "0.5", "pids": "unlimited"}
    assert parse_limits(["v1", str(2**63 - 4096), "-1", "100000", "100"])["memory"] == "unlimited"
    assert parse_limits(["v2", "max", "25000 100000", "50"]) == {
        "cgroup": "v2", "memory": "unlimited", "cpus": "0.25", "pids": "50"}


# --- layers and build ---------------------------------------------------------------------------

HISTORY_BASE = [
    {"Id": "sha256:b", "Created": 2, "CreatedBy": '/bin/sh -c #(nop)  CMD ["sh"]', "Size": 0},
    {"Id": "<missing>", "Created": 1, "CreatedBy": "/bin/sh -c #(nop) ADD file:abc in / ",
     "Size": 1000},
]


def test_history_oldest_first_and_shared_prefix():
    base = history_entries(HISTORY_BASE)
    assert [layer["created_by"] for layer in base] == ["ADD file:abc in /", 'CMD ["sh"]']
    child = history_entries([{"Id": "sha256:c", "Created": 3,
                              "CreatedBy": "/bin/sh -c echo hi > /x", "Size": 3},
                             *HISTORY_BASE])
    assert child[-1]["created_by"] == "RUN echo hi > /x"
    assert shared_prefix(child, base) == 2
    other = history_entries([{"Id": "x", "Created": 9, "CreatedBy": "ADD other", "Size": 5}])
    assert shared_prefix(child, other) == 0


def test_build_stream_steps_cache_hits_and_misses():
    model = BuildModel()
    for chunk in [
        {"stream": "Step 1/3 : FROM busybox"}, {"stream": "\n"}, {"stream": " ---> 8970ac55da5d\n"},
        {"stream": "Step 2/3 : ENV A=1\n"}, {"stream": " ---> Using cache\n"},
        {"stream": " ---> 1111aaaa2222\n"},
        {"stream": "Step 3/3 : RUN echo hi\n"}, {"stream": " ---> Running in 3f2a1b0c9d8e\n"},
        {"stream": "hi\n"}, {"stream": "Removing intermediate container 3f2a1b0c9d8e\n"},
        {"stream": " ---> 2222bbbb3333\n"}, {"aux": {"ID": "sha256:2222bbbb3333"}},
        {"stream": "Successfully built 2222bbbb3333\n"},
        {"stream": "Successfully tagged app:1\n"},
    ]:
        model.feed(chunk)
    snap = model.snapshot()
    assert [s["status"] for s in snap["steps"]] == ["base", "cached", "built"]
    assert (snap["done"], snap["total"], snap["cache_hits"], snap["cache_misses"]) == (3, 3, 1, 1)
    assert snap["steps"][2]["output"] == ["hi"]
    assert snap["image_id"] == "sha256:2222bbbb3333" and snap["tags"] == ["app:1"]
    assert snap["finished"] and not snap["error"]


def test_build_error_marks_the_step_failed():
    model = BuildModel()
    model.feed({"stream": "Step 1/2 : FROM busybox\n"})
    model.feed({"stream": "Step 2/2 : RUN false\n"})
    model.feed({"error": "The command '/bin/sh -c false' returned a non-zero code: 1",
                "errorDetail": {"code": 1}})
    snap = model.snapshot()
    assert snap["steps"][-1]["status"] == "failed" and "non-zero code: 1" in snap["error"]


# BuildKit's --progress=rawjson, as docker buildx 0.29 wrote it for a two-stage build (digests
# shortened): vertexes are named before they start, a later step's may come first, and each
# update repeats the vertex with started/completed/cached/error set.
_B, _R, _C, _F = "sha256:b1", "sha256:r2", "sha256:c3", "sha256:f4"
RAWJSON = [
    {"vertexes": [{"digest": "sha256:i0", "name": "[internal] load build definition from Dockerfile",
                   "started": "t", "completed": "t"}]},
    {"vertexes": [{"digest": _R, "name": "[build 2/2] RUN cc -o /hello hello.c"},
                  {"digest": _B, "name": "[build 1/2] FROM docker.io/library/debian:12"},
                  {"digest": _C, "name": "[stage-1 1/2] FROM docker.io/library/busybox"},
                  {"digest": _F, "name": "[stage-1 2/2] COPY --from=build /hello /hello"}]},
    {"vertexes": [{"digest": _B, "name": "[build 1/2] FROM docker.io/library/debian:12",
                   "started": "t", "completed": "t", "cached": True},
                  {"digest": _R, "name": "[build 2/2] RUN cc -o /hello hello.c", "started": "t"}]},
    {"logs": [{"vertex": _R, "stream": 1, "data": "Y29tcGlsaW5nCg=="}]},  # "compiling\n"
    {"vertexes": [{"digest": _R, "name": "[build 2/2] RUN cc -o /hello hello.c", "started": "t",
                   "completed": "t"},
                  {"digest": _C, "name": "[stage-1 1/2] FROM docker.io/library/busybox",
                   "started": "t", "completed": "t", "cached": True},
                  {"digest": _F, "name": "[stage-1 2/2] COPY --from=build /hello /hello",
                   "started": "t", "completed": "t", "cached": True}]},
]


def test_buildkit_progress_folds_into_steps_in_dockerfile_order():
    model = BuildKitModel()
    model.feed(RAWJSON[0])
    model.feed(RAWJSON[1])
    snap = model.snapshot()
    assert [s["label"] for s in snap["steps"]] == ["build 1/2", "build 2/2", "stage-1 1/2",
                                                   "stage-1 2/2"]
    assert {s["status"] for s in snap["steps"]} == {"pending"} and snap["total"] == 4
    for status in RAWJSON[2:]:
        model.feed(status)
    snap = model.snapshot()
    assert [s["status"] for s in snap["steps"]] == ["base", "built", "base", "cached"]
    assert (snap["done"], snap["cache_hits"], snap["cache_misses"]) == (4, 1, 1)
    assert snap["steps"][1]["output"] == ["compiling"] and snap["builder"] == "buildkit"


def test_buildkit_error_marks_its_step_failed():
    model = BuildKitModel()
    name = "[2/2] RUN exit 3"
    model.feed({"vertexes": [{"digest": _R, "name": name}]})
    model.feed({"vertexes": [{"digest": _R, "name": name, "started": "t", "completed": "t",
                              "error": 'process "/bin/sh -c exit 3" did not complete '
                                       "successfully: exit code: 3"}]})
    snap = model.snapshot()
    assert snap["steps"][0]["status"] == "failed" and "exit code: 3" in snap["error"]


def test_buildx_command_takes_the_sdk_build_arguments():
    words = buildx_command({"path": "app", "dockerfile": "Dockerfile.dev", "tag": "a:1",
                            "nocache": True, "buildargs": {"V": "2"}, "target": "test",
                            "labels": {"k": "v"}, "rm": True, "forcerm": True}, "/tmp/iid")
    assert words[1:] == ["buildx", "build", "--progress=rawjson", "--iidfile", "/tmp/iid",
                         "-f", "app/Dockerfile.dev", "-t", "a:1", "--no-cache",
                         "--build-arg", "V=2", "--target", "test", "--label", "k=v", "app"]
    assert buildx_command({"fileobj": object()}, "i")[-1] == "-"
    with pytest.raises(TypeError, match="squash"):
        buildx_command({"path": ".", "squash": True}, "i")


# --- volumes -------------------------------------------------------------------------------------


def test_mounts_by_type_and_anonymous_volumes():
    attrs = {"Mounts": [
        {"Type": "volume", "Name": "a" * 64, "Source": "/var/lib/docker/volumes/x/_data",
         "Destination": "/anon", "RW": True},
        {"Type": "bind", "Source": "/srv/site", "Destination": "/usr/share/nginx/html",
         "RW": False}],
        "HostConfig": {"Tmpfs": {"/scratch": "size=1m"}}}
    mounts = container_mounts(attrs)
    assert [(m["type"], m["target"], m["rw"]) for m in mounts] == [
        ("volume", "/anon", True), ("bind", "/usr/share/nginx/html", False),
        ("tmpfs", "/scratch", True)]
    assert is_anonymous("a" * 64) and not is_anonymous("pgdata")
    assert is_anonymous("whatever", {"com.docker.volume.anonymous": ""})


def test_an_anonymous_volume_listed_without_a_name_is_named_from_its_source():
    # Engine 28's inspect for `volumes=["/data"]` (a one-part bind): no Name, the path has it.
    name = "c" * 64
    attrs = {"Mounts": [{"Type": "volume", "Source": f"/var/lib/docker/volumes/{name}/_data",
                         "Destination": "/data", "Driver": "local", "RW": True}]}
    assert container_mounts(attrs)[0]["name"] == name
    bind = {"Mounts": [{"Type": "bind", "Source": "/srv/volumes/x/_data", "Destination": "/x"}]}
    assert container_mounts(bind)[0]["name"] == ""


# --- networks ------------------------------------------------------------------------------------


def test_probe_script_and_its_output():
    script = probe_script([{"name": "web", "ip": "10.0.0.2", "port": 80},
                           {"name": "db", "ip": "", "port": None}])
    assert "reach \"$r\" 80" in script and "nslookup" in script and script.endswith("wait")
    found = parse_probe("PROBE web 10.0.0.2 ok ok\nnoise\nPROBE db - fail ok\n")
    assert found["web"] == {"resolves": True, "address": "10.0.0.2", "by_name": True,
                            "by_ip": True}
    assert found["db"] == {"resolves": False, "address": "", "by_name": False, "by_ip": True}


# --- compose -------------------------------------------------------------------------------------

COMPOSE = {
    "services": {
        "web": {"image": "nginx:${TAG:-latest}", "deploy": {"replicas": 2}, "ports": ["8080:80"]},
        "db": {"image": "redis", "volumes": ["data:/data", "./conf:/etc/conf"],
               "networks": ["back"]},
    },
    "networks": {"back": {}},
    "volumes": {"data": {}},
}


def test_project_name_and_interpolation(tmp_path: Path):
    assert project_name(tmp_path / "My App" / "compose.yaml", {}, {}) == "myapp"
    assert project_name(tmp_path / "x" / "compose.yaml", {"name": "Shop"}, {}) == "shop"
    assert interpolate("nginx:${TAG:-latest} $$HOME ${X}", {"X": "1"}) == "nginx:latest $HOME 1"


def test_desired_vs_actual():
    desired = desired_state(COMPOSE, "shop")
    assert desired["services"]["web"]["replicas"] == 2
    assert desired["services"]["db"]["volumes"] == [
        {"type": "volume", "source": "data", "target": "/data"},
        {"type": "bind", "source": "./conf", "target": "/etc/conf"}]
    assert desired["networks"] == {"back": {"name": "shop_back", "external": False},
                                   "default": {"name": "shop_default", "external": False}}
    containers = [{"name": "shop-web-1", "service": "web", "state": "running"},
                  {"name": "shop-web-2", "service": "web", "state": "exited"},
                  {"name": "shop-old-1", "service": "old", "state": "running"}]
    diff = compare(desired, containers, [{"name": "shop_default", "key": "default"}],
                   [{"name": "shop_data", "key": "data"}])
    verdicts = {s["service"]: s["verdict"] for s in diff["services"]}
    assert verdicts == {"web": "too few", "db": "missing", "old": "orphan"}
    assert {n["key"]: n["verdict"] for n in diff["networks"]} == {"back": "missing",
                                                                  "default": "ok"}
    assert not diff["in_sync"]


# --- swarm ---------------------------------------------------------------------------------------


def test_quorum_arithmetic():
    assert quorum(1, 1) == {"managers": 1, "reachable": 1, "quorum": 1, "tolerates": 0,
                            "has_quorum": True}
    assert quorum(3, 2)["has_quorum"] and quorum(3, 2)["tolerates"] == 1
    assert not quorum(3, 1)["has_quorum"]
    assert quorum(5, 3) == {"managers": 5, "reachable": 3, "quorum": 3, "tolerates": 2,
                            "has_quorum": True}
    assert quorum(4, 2)["tolerates"] == 1 and not quorum(4, 2)["has_quorum"]


# --- the build view and the containerd image store's lost-layer race ------------------------------

_LOST = ('failed to prepare extraction snapshot "extract-1 sha256:0176": parent snapshot '
         'sha256:3d86 does not exist: not found')


@pytest.mark.parametrize(("errors", "built"), [([_LOST], True), ([_LOST, _LOST], False),
                                               (["exit code: 3"], False)])
def test_the_buildkit_view_builds_once_more_only_when_the_engine_lost_a_layer(
        tmp_path, monkeypatch, errors, built):
    """A ``docker`` that reports ``errors[n]`` as the export's error on its n-th build, then builds:
    the view starts over once for the engine's race, never for the learner's own failure."""
    script = tmp_path / "docker"
    script.write_text(f"""#!{sys.executable}
import json, pathlib, sys
runs = pathlib.Path({str(tmp_path / "runs")!r})
n = len(runs.read_text().splitlines()) if runs.exists() else 0
runs.write_text((runs.read_text() if runs.exists() else "") + sys.stdin.read().strip() + "\\n")
errors = {errors!r}
vertex = {{"digest": "sha256:e", "name": "exporting to image", "started": "t", "completed": "t"}}
if n < len(errors):
    print(json.dumps({{"vertexes": [dict(vertex, error=errors[n])]}}), file=sys.stderr)
    sys.exit(1)
print(json.dumps({{"vertexes": [vertex]}}), file=sys.stderr)
iid = sys.argv[sys.argv.index("--iidfile") + 1]
pathlib.Path(iid).write_text("sha256:built")
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    view = BuildView(FakeClient(), builder="buildkit")
    try:
        view.build(fileobj=io.BytesIO(b"FROM scratch\n"), tag="app")
        assert view.wait(30) == ("sha256:built" if built else "")
        runs = (tmp_path / "runs").read_text().splitlines()
        retried = errors[0] == _LOST
        assert runs == ["FROM scratch"] * (2 if retried else 1)  # the Dockerfile sent again
        assert bool(view.build_state["error"]) is not built
    finally:
        view.close()
