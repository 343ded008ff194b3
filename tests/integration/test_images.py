"""The course images on the real engine: prepared, they behave as the official ones do."""

from __future__ import annotations

import io
import json
import socket
import tarfile
import time
import urllib.request
import uuid

import docker.errors
import pytest

from docklab import labels as L
from docklab.images import CATALOGUE, CourseImage, dind_run_options, image_status, prepare
from docklab.images.build import host_ca_files
from docklab.images.prepare import default_names
from tests.conftest import run_docklab

pytestmark = pytest.mark.engine

LESSON = "test-images"


@pytest.fixture(scope="module")
def prepared(client):
    """Every course image present (built here where no registry answers)."""
    results = prepare(client, progress=False)
    yield {result["name"]: result for result in results}
    L.remove_labelled(client, lesson=LESSON, session=L.session_id())


@pytest.fixture
def start(client, prepared):
    """Start a labelled container; every one is removed after the test."""
    made = []

    def _start(image, command=None, **kwargs):
        container = client.containers.run(image, command, detach=True,
                                          labels=L.labels_for(LESSON), **kwargs)
        made.append(container)
        return container

    yield _start
    for container in made:
        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture
def output(start):
    """Run a command to its end in a labelled container; return what it printed."""

    def _output(image, command, **kwargs):
        container = start(image, command, **kwargs)
        status = container.wait(timeout=120)
        logs = container.logs().decode()
        container.remove(v=True)  # now, so it holds no image a later rebuild replaces
        assert status["StatusCode"] == 0, logs
        return logs

    return _output


def _published(container, port: str) -> int:
    for _ in range(50):
        container.reload()
        bindings = (container.ports or {}).get(port)
        if bindings:
            return int(bindings[0]["HostPort"])
        time.sleep(0.1)
    raise AssertionError(f"{port} was not published")


def _http_get(port: int, path: str = "/", timeout: float = 30.0) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as answer:
                return answer.status, answer.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_busybox_runs_echo(output):
    assert output("busybox", ["echo", "hello from busybox"]) == "hello from busybox\n"
    assert "nobody" in output("busybox", ["sh", "-c", "id nobody && ls -ld /tmp"])


def test_debian_12_is_bookworm(output):
    assert output("debian:12", ["cat", "/etc/debian_version"]).startswith("12")


def test_apt_get_install_works_in_a_debian_12_build(client, prepared):
    dockerfile = b"FROM debian:12\nRUN apt-get update && apt-get install -y cowsay\n"
    tag = f"docklab-test-cowsay:{uuid.uuid4().hex[:8]}"
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True,
                                   forcerm=True, labels=L.labels_for(LESSON), timeout=600)
    try:
        said = client.containers.run(image.id, ["/usr/games/cowsay", "moo"], remove=True,
                                     labels=L.labels_for(LESSON))
        assert b"moo" in said
    finally:
        client.images.remove(image.id, force=True)


def test_python_311_with_pip(output):
    assert output("python:3.11-slim",
                  ["python", "-c", "import platform; print(platform.python_version())"]
                  ).startswith("3.11")
    assert output("python:3.11-slim", ["pip", "--version"]).startswith("pip ")
    # Root may `pip install` into the system Python, as in the official image.
    assert "EXTERNALLY" not in output(
        "python:3.11-slim", ["sh", "-c", "ls /usr/lib/python3.11/ | grep -c EXTERN || true"])


def test_host_ca_certificates_are_trusted_inside(output):
    cas = host_ca_files()
    if not cas:
        pytest.skip("this host has no extra CA certificates to inject")
    bundle = output("python:3.11-slim", ["cat", "/etc/ssl/certs/ca-certificates.crt"])
    for path in cas:
        body = "".join(path.read_text().split("-----")[2].split())[:64]
        assert body in "".join(bundle.split()), path.name
    listed = output("debian:12", ["ls", "/usr/local/share/ca-certificates"]).split()
    assert len(listed) == len(cas)


def test_nginx_serves_its_welcome_page(start):
    web = start("nginx", ports={"80/tcp": ("127.0.0.1", None)})
    status, page = _http_get(_published(web, "80/tcp"))
    assert status == 200 and "Welcome to nginx!" in page
    assert web.attrs["Config"]["StopSignal"] == "SIGQUIT"


def test_redis_answers_ping_from_outside_the_container(start):
    redis = start("redis", ports={"6379/tcp": ("127.0.0.1", None)})
    port = _published(redis, "6379/tcp")
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
                conn.sendall(b"PING\r\n")
                answer = conn.recv(64)
            if answer:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "redis did not answer"
        time.sleep(0.3)
    assert answer == b"+PONG\r\n"  # not DENIED: protected mode is off, as in the official image


def test_registry_answers_v2(start):
    registry = start("registry:2", ports={"5000/tcp": ("127.0.0.1", None)})
    status, body = _http_get(_published(registry, "5000/tcp"), "/v2/")
    assert status == 200 and body.strip() == "{}"


def test_dind_runs_an_engine_with_containers_inside(client, start):
    volume = client.volumes.create(f"docklab-test-dind-{uuid.uuid4().hex[:8]}",
                                   labels=L.labels_for(LESSON))
    try:
        dind = start("docker:dind", **dind_run_options(volume.name, client))
        deadline = time.monotonic() + 60
        while True:
            code, out = dind.exec_run(["docker", "version", "--format", "{{.Server.Version}}"])
            if code == 0:
                assert out.decode().startswith("26.1."), out  # Debian 13's engine
                break
            dind.reload()
            assert dind.status == "running", dind.logs()[-2000:].decode()
            assert time.monotonic() < deadline, out.decode()
            time.sleep(0.5)
        # An inner container must start: that needs the cgroups remounted writable, and on
        # Engine 26 /proc/sys too (the options above leave it read-only; the entry script does it).
        saved = b"".join(client.images.get("busybox").save(named=True))
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tarfile.TarInfo("busybox.tar")
            info.size = len(saved)
            tar.addfile(info, io.BytesIO(saved))
        assert dind.put_archive("/tmp", archive.getvalue())
        code, out = dind.exec_run(["docker", "load", "-i", "/tmp/busybox.tar"])
        assert code == 0, out.decode()
        code, out = dind.exec_run(["docker", "run", "--rm", "busybox", "echo", "inner"])
        assert (code, out.decode().strip()) == (0, "inner")
    finally:
        for container in client.containers.list(all=True, filters={"volume": volume.name}):
            container.remove(force=True, v=True)
        volume.remove(force=True)


def test_asking_whether_the_engine_takes_cap_drop_leaves_no_volume(client, prepared, monkeypatch):
    """docker:dind declares VOLUME /var/lib/docker, so the probe container (created, never
    started) gets an anonymous volume at once: it must go with the probe (docker rm -v)."""
    from docklab.images import catalogue

    monkeypatch.setattr(catalogue, "_takes_cap_drop", {})  # ask this engine afresh
    volumes, remove = [], client.api.remove_container

    def look_then_remove(container, **kwargs):
        volumes.extend(mount["Name"] for mount in client.api.inspect_container(container)["Mounts"]
                       if mount["Type"] == "volume")
        return remove(container, **kwargs)

    monkeypatch.setattr(client.api, "remove_container", look_then_remove)
    # NET_RAW: a capability every engine lets ALL drop, so the probe container is created (Engines
    # 26 and later refuse SYS_RESOURCE here before creating anything).
    assert catalogue.engine_takes_cap_drop(client, capability="NET_RAW")
    assert volumes, "the probe had no anonymous volume: this test would check nothing"
    for name in volumes:
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get(name)


def test_a_second_prepare_rebuilds_nothing(client, prepared):
    started = time.monotonic()
    again = prepare(client, progress=False)
    assert time.monotonic() - started < 30
    # The engine images are built only when named (docklab engines start): not by a plain prepare.
    assert {r["name"]: r["action"] for r in again} == {n: "present" for n in default_names()}
    assert {r["name"]: r["id"] for r in again} == {n: r["id"] for n, r in prepared.items()}


def test_status_and_cli_list_show_every_image_current(prepared):
    result = run_docklab("images", "list", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)["images"]
    assert [entry["name"] for entry in listed] == [image.name for image in CATALOGUE]
    assert all(entry["present"] and entry["current"] for entry in listed
               if not entry["on_demand"])
    assert {entry["id"] for entry in listed if not entry["on_demand"]} == {
        r["id"] for r in prepared.values()}


def test_local_builds_are_labelled_but_never_managed(client, prepared):
    for entry in image_status(client):
        if entry["on_demand"] and not entry["present"]:  # an engine image nobody asked for
            continue
        labels = client.images.get(entry["id"]).labels or {}
        assert L.MANAGED not in labels
        if entry["source"] == "local-build":
            assert labels[L.CATALOGUE] == entry["name"] and labels[L.LOCAL_BUILD] == "true"


@pytest.fixture
def throwaway(client, tmp_path):
    """A catalogue entry of its own, FROM busybox, in a temporary recipes folder."""
    recipe = tmp_path / "recipes" / "throwaway"
    recipe.mkdir(parents=True)
    (recipe / "Dockerfile").write_text(
        "FROM busybox\nCOPY message.txt /message.txt\nCMD [\"cat\", \"/message.txt\"]\n")
    (recipe / "message.txt").write_text("one\n")
    image = CourseImage(name=f"docklab-test-recipe:{uuid.uuid4().hex[:8]}",
                        description="throwaway test image", used_for="tests", recipe=recipe,
                        pullable=False)
    yield image
    try:
        client.images.remove(image.ref, force=True)
    except docker.errors.ImageNotFound:
        pass


def test_a_recipe_change_rebuilds_only_that_image(client, prepared, throwaway, output):
    catalogue = CATALOGUE + (throwaway,)
    first = {r["name"]: r for r in prepare(client, [throwaway.name], catalogue=catalogue,
                                           progress=False)}
    assert {n: r["action"] for n, r in first.items()} == {"busybox": "present",
                                                           throwaway.name: "built"}
    assert output(throwaway.ref, None) == "one\n"

    (throwaway.recipe / "message.txt").write_text("two\n")
    lines = []
    everything = {r["name"]: r for r in prepare(client, catalogue=catalogue,
                                                progress=lines.append)}
    assert {n for n, r in everything.items() if r["action"] != "present"} == {throwaway.name}
    assert everything[throwaway.name]["action"] == "built"
    assert any(line.startswith(f"{throwaway.name}: Step ") for line in lines)
    assert everything[throwaway.name]["id"] != first[throwaway.name]["id"]
    assert {n: r["id"] for n, r in everything.items() if n != throwaway.name} == {
        n: r["id"] for n, r in prepared.items()}
    assert output(throwaway.ref, None) == "two\n"
    # The replaced build is gone, not left dangling.
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get(first[throwaway.name]["id"])


def test_a_failing_build_reports_the_engine_output(client, prepared, tmp_path):
    from docklab.images import ImageBuildError

    recipe = tmp_path / "broken"
    recipe.mkdir()
    (recipe / "Dockerfile").write_text("FROM busybox\nRUN echo about-to-fail && exit 3\n")
    image = CourseImage(name=f"docklab-test-broken:{uuid.uuid4().hex[:8]}", description="d",
                        used_for="u", recipe=recipe, pullable=False)
    with pytest.raises(ImageBuildError) as raised:
        prepare(client, [image.name], catalogue=CATALOGUE + (image,), progress=False)
    assert "about-to-fail" in raised.value.output
    assert "returned a non-zero code: 3" in str(raised.value)


def test_an_image_a_registry_serves_is_pulled_not_built(client, start, tmp_path):
    registry = start("registry:2", ports={"5000/tcp": ("127.0.0.1", None)})
    port = _published(registry, "5000/tcp")
    _http_get(port, "/v2/")
    ref = f"localhost:{port}/docklab-test-pull:{uuid.uuid4().hex[:8]}"
    client.images.get("busybox").tag(ref)
    try:
        for event in client.images.push(ref, stream=True, decode=True):
            assert "error" not in event, event
    finally:
        client.images.remove(ref)
    recipe = tmp_path / "never-built"
    recipe.mkdir()
    (recipe / "Dockerfile").write_text("FROM busybox\nRUN exit 1\n")
    image = CourseImage(name=ref, description="d", used_for="u", recipe=recipe)
    catalogue = CATALOGUE + (image,)
    try:
        results = prepare(client, [ref], catalogue=catalogue, progress=False)
        assert results[-1]["action"] == "pulled"
        status = {e["name"]: e for e in image_status(client, catalogue=catalogue)}
        assert status[ref]["source"] == "registry" and status[ref]["current"]
    finally:
        client.images.remove(ref, force=True)
