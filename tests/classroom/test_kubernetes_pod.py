"""A learner's pod of classroom/kubernetes/values.yaml, played on this host's engine (there is no
cluster here): the init container's script, the engine sidecar's command, its readiness probe and
the learner's DOCKER_HOST, exactly as the values file writes them, run in the course's images the
way a pod runs its containers: one network namespace for all of them (a holder container, as
Kubernetes' pause container), one volume for the engine's data (the pod's emptyDir). Docker's
options for Docker-in-Docker stand in for ``privileged: true``, which this host refuses (DESIGN,
"The engine").

What it shows: the init container loads the course images into the volume and exits; the engine
then starts on that volume with the images already there, answers the probe, and runs a container
of them for the learner's side of the pod; and from another pod's network namespace its port is
closed (the same request from inside the pod answers, so the test can fail). How long the load
and the engine's start take is printed (BENCHMARKS.md, "Classroom on Kubernetes").
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors
import pytest
import yaml

from docklab import labels as L
from docklab.grading.sealed import saved_images
from docklab.images import dind_run_options, prepare
from docklab.images.catalogue import SYSTEMPATHS_UNCONFINED

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "classroom" / "kubernetes"
#: The images the test preloads: busybox by default (DOCKLAB_CLASSROOM_IMAGES: e.g. all six).
IMAGES = tuple(name for name in os.environ.get("DOCKLAB_CLASSROOM_IMAGES", "busybox").split(",")
               if name)


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load((K8S / "values.yaml").read_text())


@pytest.fixture(scope="module")
def client():
    client = docker.from_env(timeout=300)
    prepare(client, ["docker:dind", *IMAGES], progress=lambda line: None)
    yield client
    client.close()


def _labels(kind: str) -> dict[str, str]:
    return L.labels_for("classroom", kind=kind)


def _images_image(client, tag: str) -> str:
    """classroom/kubernetes/images.Dockerfile built over a `docker save` of IMAGES (labelled)."""
    tar_path, _ = saved_images(client, IMAGES)
    dockerfile = (K8S / "images.Dockerfile").read_text()
    # One LABEL line (the legacy builder makes each labels= entry a step of its own).
    dockerfile += "LABEL " + " ".join(f'{k}="{v}"' for k, v in _labels("image").items()) + "\n"
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile.encode())
        tar.addfile(info, io.BytesIO(dockerfile.encode()))
        tar.add(tar_path, arcname="course.tar")
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True, forcerm=True)
    return tag


def _dind(client, volume: str) -> dict:
    """The options a privileged container gets here instead (and the pod's emptyDir)."""
    options = dind_run_options(volume, client)
    binds = options.pop("volumes")
    return {"binds": binds, **options}


def _create(client, image: str, name: str, *, pod: str, volume: str, entrypoint=None,
            command=None):
    host_config = client.api.create_host_config(network_mode=f"container:{pod}",
                                                **_dind(client, volume))
    host_config.update(SYSTEMPATHS_UNCONFINED)
    created = client.api.create_container(image, name=name, labels=_labels("container"),
                                          host_config=host_config, entrypoint=entrypoint,
                                          command=command, detach=True)
    return client.containers.get(created["Id"])


def _fetch(client, network_mode: str, url: str) -> tuple[int, str]:
    """busybox wget of ``url`` from a container in ``network_mode`` (timeout: DESIGN pitfalls)."""
    probe = client.containers.run("busybox", ["timeout", "5", "wget", "-q", "-O-", url],
                                  network_mode=network_mode, labels=_labels("container"),
                                  detach=True)
    try:
        code = probe.wait(timeout=30)["StatusCode"]
        return code, probe.logs().decode(errors="replace")
    finally:
        probe.remove(force=True)


@dataclass
class Pod:
    """A learner's pod played on this engine: its holder container (the pod's network namespace),
    and the seconds the init container and the engine took."""

    holder: object
    loaded_in: float
    ready_in: float

    def address(self) -> str:
        self.holder.reload()
        return self.holder.attrs["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]


@contextlib.contextmanager
def played_pod(client, values: dict, engine_args: list[str] | None = None):
    """The pod of ``values``: the holder, the init container run to its end, then the engine with
    the values' args (or ``engine_args``) until its readiness probe answers. Everything goes
    afterwards, pass or fail."""
    user = values["singleuser"]
    init, = [c for c in user["initContainers"] if c["name"] == "course-images"]
    engine, = [c for c in user["extraContainers"] if c["name"] == "engine"]
    run = os.urandom(3).hex()
    names = {part: L.course_name(f"k8s-pod-{run}-{part}") for part in ("pod", "images", "engine",
                                                                        "data")}
    tag = f"{L.course_name('docklab-classroom-images').lower()}:test-{run}"
    made = []
    try:
        _images_image(client, tag)
        client.volumes.create(names["data"], labels=_labels("volume"))
        # The pod's network namespace (Kubernetes' pause container).
        holder = client.containers.run("busybox", ["sleep", "3600"], name=names["pod"],
                                       detach=True, labels=_labels("container"), init=True)
        made.append(holder)

        started = time.monotonic()
        loader = _create(client, tag, names["images"], pod=names["pod"], volume=names["data"],
                         entrypoint=init["command"])
        made.append(loader)
        loader.start()
        exit_code = loader.wait(timeout=300)["StatusCode"]
        loaded_in = time.monotonic() - started
        assert exit_code == 0, loader.logs().decode(errors="replace")

        started = time.monotonic()
        sidecar = _create(client, "docker:dind", names["engine"], pod=names["pod"],
                          volume=names["data"], command=engine_args or engine["args"])
        made.append(sidecar)
        sidecar.start()
        probe = engine["readinessProbe"]["exec"]["command"]
        while sidecar.exec_run(probe).exit_code != 0:
            sidecar.reload()
            assert sidecar.status == "running", sidecar.logs().decode(errors="replace")
            assert time.monotonic() - started < 120, "the engine never answered its probe"
            time.sleep(0.25)
        yield Pod(holder, loaded_in, time.monotonic() - started)
    finally:
        for container in reversed(made):
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        for remove in (lambda: client.volumes.get(names["data"]).remove(force=True),
                       lambda: client.images.remove(tag, force=True)):
            try:
                remove()
            except docker.errors.NotFound:
                pass


def test_the_pods_engine_starts_with_the_course_images_and_only_the_pod_reaches_it(client,
                                                                                    values):
    docker_host = values["singleuser"]["extraEnv"]["DOCKER_HOST"]
    port = docker_host.rsplit(":", 1)[1]
    with played_pod(client, values) as pod:
        print(f"\n{', '.join(IMAGES)}: loaded by the init container in {pod.loaded_in:.1f} s; "
              f"engine ready in {pod.ready_in:.1f} s")
        # The learner's side of the pod: DOCKER_HOST as the values file sets it, the images
        # there already, a container of them runs.
        script = ("docker images --format '{{.Repository}}:{{.Tag}}' && "
                  "docker run --rm busybox echo hello from the engine of the pod")
        learner = client.containers.run(
            "docker:dind", entrypoint=["sh", "-c", script],
            environment={"DOCKER_HOST": docker_host}, labels=_labels("container"),
            network_mode=f"container:{pod.holder.name}", detach=True)
        try:
            assert learner.wait(timeout=120)["StatusCode"] == 0, learner.logs().decode()
            output = learner.logs().decode()
        finally:
            learner.remove(force=True, v=True)
        for image in IMAGES:
            reference = image if ":" in image else f"{image}:latest"
            assert reference in output.splitlines()
        assert "hello from the engine of the pod" in output

        # Only the pod reaches it: from inside, the API answers; from another network namespace
        # (another pod on the same network), the pod's address on that port is closed.
        code, answer = _fetch(client, f"container:{pod.holder.name}",
                              f"http://127.0.0.1:{port}/version")
        assert code == 0 and '"ApiVersion"' in answer
        code, answer = _fetch(client, "bridge", f"http://{pod.address()}:{port}/version")
        assert code != 0 and "ApiVersion" not in answer


def test_an_engine_listening_on_every_address_is_reached_from_another_pod(client, values):
    """The probe from another pod can fail: an engine on 0.0.0.0 (the mistake the values' test
    refuses) answers it, and any pod on the cluster's network could drive that learner's engine."""
    args = [arg.replace("tcp://127.0.0.1:", "tcp://0.0.0.0:")
            for arg in values["singleuser"]["extraContainers"][0]["args"]]
    port = values["singleuser"]["extraEnv"]["DOCKER_HOST"].rsplit(":", 1)[1]
    with played_pod(client, values, engine_args=args) as pod:
        code, answer = _fetch(client, "bridge", f"http://{pod.address()}:{port}/version")
        assert code == 0 and '"ApiVersion"' in answer
