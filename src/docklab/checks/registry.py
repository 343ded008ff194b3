"""Checks for the registry lab: push an image to a registry, record its digest, pull by digest.

The answer is a folder holding ``publish.py`` (the lab folder, where the notebook's ``%%writefile
publish.py`` cell writes it), or the notebook itself (its last ``%%writefile publish.py`` cell).
``publish.py`` defines ``publish(client, registry)`` (``client`` a ``docker.DockerClient``,
``registry`` an address such as ``localhost:<port>``), which tags the course's busybox as
``<registry>/docklab/hello:1.0``, pushes it and returns ``{"reference":
"<registry>/docklab/hello:1.0", "digest": "sha256:..."}``, the manifest digest the registry stores.
The reference answer is in ``grader/source/registry/`` (instructors only: the learner's image
holds no solution).

Grading starts a registry of its own (``registry:2``, labelled, memory/pids bounded, published on
a free port of the engine's host), then calls ``publish`` **inside the engine being judged**: in a
container of the course image ``docklab/python-docker`` (:mod:`docklab.checks.inside`: no
capabilities, read-only, not root on a sealed engine, that engine's socket as its only engine,
on the engine's host network where the registry is), with a time limit. It judges through the
engine and the registry: the registry's API (``/v2/_catalog``, ``/v2/docklab/hello/tags/list`` and
the manifest's ``Docker-Content-Digest``, asked by a helper container on the engine's host
network), then the local tag is removed and the image is pulled back by digest (``docker pull
<registry>/docklab/hello@sha256:...``). Course images are used by the ID the judge recorded
(``sandbox.reference``): publish() may move tags.

Afterwards the registry, the helper containers and every tag or digest reference under the
registry's address are removed (the image they pointed at, busybox, stays). When graded
(:mod:`docklab.grading`), all of it happens on a sealed engine of its own, which cannot reach the
grading host; with ``docklab check`` on the learner's engine, publish() has the learner's rights on
that engine, as the notebook does.

Equivalent CLI: ``docklab check registry <folder or notebook> [--json]``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import docker.errors
import requests.exceptions

from docklab.checks import inside
from docklab.checks.answer import writefile_cell
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
from docklab.errors import ImageError

REGISTRY_IMAGE = "registry:2"
#: Python with the Docker SDK: runs publish.py, and asks the registry (the helper).
TOOL_IMAGE = "docklab/python-docker"
HELPER_IMAGE = TOOL_IMAGE
SOURCE_IMAGE = "busybox"
SCRIPT = "publish.py"
REPOSITORY = "docklab/hello"
TAG = "1.0"
PUBLISH_TIMEOUT = 90.0
#: publish.py reaches its container in an environment variable (the root filesystem is read-only).
SCRIPT_BYTES = 100_000
LESSON = "10-registry"
TOPICS = {
    "returns_record": "Try it: publish a stable release",
    "pushed": "2. An image to ship, and a name that says where it goes; 3. Push",
    "digest_matches": "4. What the registry stores (manifest digests)",
    "pull_by_digest": "5. Pull, by tag and by digest",
}
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")

CRITERIA = [
    Criterion("returns_record", 1, "publish() runs and returns the reference and digest",
              needs_image=False),
    Criterion("pushed", 2, f"the registry has {REPOSITORY} with the tag {TAG}"),
    Criterion("digest_matches", 2, "the recorded digest is the registry's manifest digest"),
    Criterion("pull_by_digest", 2, "pulling <registry>/docklab/hello@<digest> gives the image"),
]

#: Run in a helper on the engine's host network: waits for the registry, then reports what it
#: stores. argv: base URL, repository, tag.
_ASK = """
import json, sys, time, urllib.error, urllib.request
base, repo, tag = sys.argv[1:4]
def get(path, head=False):
    request = urllib.request.Request(base + path, method="HEAD" if head else "GET", headers={
        "Accept": ", ".join([
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.index.v1+json"])})
    try:
        with urllib.request.urlopen(request, timeout=3) as response:
            return response.status, response.headers, (b"" if head else response.read(65536))
    except urllib.error.HTTPError as error:
        return error.code, error.headers, b""
deadline = time.time() + 15
while True:
    try:
        status, _, _ = get("/v2/")
        break
    except OSError:
        if time.time() > deadline:
            print(json.dumps({"ready": False}))
            sys.exit(0)
        time.sleep(0.2)
out = {"ready": status == 200}
if len(sys.argv) > 4:
    status, _, body = get("/v2/_catalog")
    out["catalog"] = json.loads(body or b"{}").get("repositories") or [] if status == 200 else []
    status, _, body = get("/v2/" + repo + "/tags/list")
    out["tags"] = (json.loads(body or b"{}").get("tags") or []) if status == 200 else []
    status, headers, _ = get("/v2/" + repo + "/manifests/" + tag, head=True)
    out["manifest_status"] = status
    out["digest"] = headers.get("Docker-Content-Digest") if status == 200 else None
print(json.dumps(out))
"""

#: Runs the learner's publish() in the tool container (bounded in time); prints its result.
#: argv: the registry's address; the script comes in DOCKLAB_PUBLISH_PY.
_CALL = """
import json, os, sys, types
import docker
source = os.environ.pop("DOCKLAB_PUBLISH_PY")
module = types.ModuleType("publish")
module.__file__ = "publish.py"
sys.modules["publish"] = module
exec(compile(source, "publish.py", "exec"), module.__dict__)
result = module.publish(docker.from_env(), sys.argv[1])
print("\\n@@RESULT@@" + json.dumps(result, default=str))
"""


def _script(answer) -> tuple[bytes | None, str]:
    if SCRIPT in answer.files:
        return answer.files[SCRIPT], ""
    if answer.kind == "notebook":

        text, why = writefile_cell(Path(answer.source), SCRIPT)
        return (text.encode() if text is not None else None), why
    return None, (f"There is no {SCRIPT} in the folder {answer.source}: run the %%writefile "
                  f"{SCRIPT} cell, which writes it next to the notebook.")


def _helper(sandbox: Sandbox, args: list[str]) -> dict:
    """The registry's answers, asked from the engine's host network (where its port is)."""
    limits = sandbox.container_limits()
    try:
        helper = sandbox.client.containers.run(
            sandbox.reference(HELPER_IMAGE).id, ["python", "-c", _ASK, *args], detach=True,
            network_mode="host", labels=sandbox.labels("container"), **limits)
    except docker.errors.APIError as exc:
        return {"error": exc.explanation or str(exc)}
    try:
        helper.wait(timeout=sandbox.limits.run_timeout + 10)
        output = helper.logs().decode("utf-8", "replace").strip().splitlines()
        return json.loads(output[-1]) if output else {"error": "the helper printed nothing"}
    except (requests.exceptions.RequestException, docker.errors.APIError, ValueError) as exc:
        return {"error": str(exc)}
    finally:
        sandbox.remove_container(helper.id)


def _start_registry(sandbox: Sandbox):
    container = sandbox.client.containers.run(
        sandbox.reference(REGISTRY_IMAGE).id, detach=True, labels=sandbox.labels("container"),
        ports={"5000/tcp": ("127.0.0.1", None)},
        **{k: v for k, v in sandbox.container_limits().items()
           if k not in ("cap_drop", "security_opt")})
    container.reload()
    binding = container.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]
    return container, int(binding["HostPort"])


def _call_publish(sandbox: Sandbox, script: bytes, registry: str) -> tuple[object, str, str]:
    """publish(client, registry) in a tool container on the judged engine
    → (result or None, output tail, problem)."""
    if len(script) > SCRIPT_BYTES:
        return None, "", (f"publish.py is {len(script)} bytes; a publish() function fits in "
                          f"{SCRIPT_BYTES // 1000} kB.")
    client = sandbox.client
    options = inside.tool_options(
        sandbox, network_mode="host",
        environment={"DOCKLAB_PUBLISH_PY": script.decode("utf-8", "replace")})
    try:
        container = client.containers.create(
            sandbox.reference(TOOL_IMAGE).id, ["python", "-c", _CALL, registry], **options)
    except docker.errors.APIError as exc:
        return None, "", f"publish() could not be started: {exc.explanation or exc}"
    try:
        container.start()
        try:
            code = container.wait(timeout=PUBLISH_TIMEOUT).get("StatusCode")
        except requests.exceptions.RequestException:
            return None, "", (f"publish() did not return within {PUBLISH_TIMEOUT:.0f} s, so "
                              "grading stopped it.")
        stdout = container.logs(stdout=True, stderr=False, tail=200).decode("utf-8", "replace")
        stderr = container.logs(stdout=False, stderr=True, tail=40).decode("utf-8", "replace")
    except docker.errors.APIError as exc:
        return None, "", f"publish() could not be run: {exc.explanation or exc}"
    finally:
        sandbox.remove_container(container.id)
    tail = "\n".join(stderr.strip().splitlines()[-8:])
    if code != 0 or "@@RESULT@@" not in stdout:
        return None, tail, f"publish() failed:\n{tail or stdout[-800:] or '(no output)'}"
    try:
        return json.loads(stdout.rsplit("@@RESULT@@", 1)[1].strip() or "null"), tail, ""
    except ValueError:
        return None, tail, "publish() returned something that is not a dict of strings."


def _verdict_record(result, registry: str) -> tuple[Verdict, str, str]:
    expected_ref = f"{registry}/{REPOSITORY}:{TAG}"
    if not isinstance(result, dict):
        return failed(f"publish() returned {result!r}; it should return a dict: "
                      f'{{"reference": "{expected_ref}", "digest": "sha256:..."}}.'), "", ""
    reference, digest = str(result.get("reference", "")), str(result.get("digest", ""))
    if reference != expected_ref:
        return failed(f"publish() recorded the reference {reference!r}, not {expected_ref!r}: "
                      "the registry's address comes first in an image's name, and publish() "
                      "must use the one it is given (grading's registry runs on a port of its "
                      "own)."), reference, digest
    if not _DIGEST.match(digest):
        return failed(f"publish() recorded the digest {digest!r}: a digest looks like sha256: "
                      "and 64 hex digits. client.images.get_registry_data(reference).id asks the "
                      "registry for it, on every engine (the push's own report differs: aux.Digest "
                      "with the classic image store, a 'TAG: digest: sha256:...' status line with "
                      "the containerd store)."),\
            reference, digest
    return passed(f"publish() returned {reference} and {digest[:19]}..."), reference, digest


def _untag_everything_under(client, prefix: str) -> None:
    """Remove every tag and digest reference under the registry's address (not the images)."""
    # The low-level list: no inspect per image, which another user's removal would break.
    for image in client.api.images():
        for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
            if ref.startswith(prefix):
                try:
                    client.api.remove_image(ref)
                except docker.errors.APIError:
                    continue


def judge(*, sandbox: Sandbox, answer, lab: Lab) -> dict[str, Verdict]:
    client = sandbox.client
    verdicts: dict[str, Verdict] = {}
    script, why = _script(answer)
    if script is None:
        verdicts["returns_record"] = failed(why)
        verdicts.update(not_judged(lab, "there is no publish.py to run."))
        return verdicts
    if b"raise NotImplementedError" in script:
        verdicts["returns_record"] = failed(
            "The publish.py cell still holds the placeholder `raise NotImplementedError()`: "
            "replace it with your publish() function.")
        verdicts.update(not_judged(lab, "publish() is not written yet."))
        return verdicts
    for image in (REGISTRY_IMAGE, TOOL_IMAGE, SOURCE_IMAGE):
        try:
            sandbox.reference(image)
        except docker.errors.ImageNotFound as exc:
            raise ImageError(f"The course image {image} is not on this engine, so the registry "
                             "lab cannot be judged.", "Run `docklab images prepare`.") from exc

    registry_container, port = _start_registry(sandbox)
    registry = f"localhost:{port}"
    prefix = f"{registry}/"
    try:
        ready = _helper(sandbox, [f"http://{registry}", REPOSITORY, TAG])
        if not ready.get("ready"):
            raise ImageError(f"The grading registry ({REGISTRY_IMAGE}) did not answer on "
                             f"{registry}: {ready}", "Check the engine (`docklab doctor`).")
        result, tail, problem = _call_publish(sandbox, script, registry)
        sandbox.details["publish_output"] = tail
        if problem:
            verdicts["returns_record"] = failed(problem)
            record_digest = ""
        else:
            verdicts["returns_record"], _, record_digest = _verdict_record(result, registry)
        stored = _helper(sandbox, [f"http://{registry}", REPOSITORY, TAG, "inspect"])
        sandbox.details["registry"] = stored
        verdicts["pushed"] = _verdict_pushed(stored)
        verdicts["digest_matches"] = _verdict_digest(stored, record_digest)
        verdicts["pull_by_digest"] = _verdict_pull(sandbox, registry, record_digest, stored)
    finally:
        _untag_everything_under(client, prefix)
        sandbox.remove_container(registry_container.id)
    return verdicts


def _verdict_pushed(stored: dict) -> Verdict:
    if "error" in stored:
        return unjudged(f"the registry could not be asked ({stored['error']}).")
    if REPOSITORY not in (stored.get("catalog") or []):
        found = ", ".join(stored.get("catalog") or []) or "nothing"
        return failed(f"The registry has no repository {REPOSITORY} (it has: {found}). Tag the "
                      f"image as <registry>/{REPOSITORY}:{TAG} (image.tag(...)), then push that "
                      "name: the part before the first / tells the engine which registry.")
    if TAG not in (stored.get("tags") or []):
        return failed(f"The registry has {REPOSITORY}, but with the tags "
                      f"{stored.get('tags') or []}, not {TAG}.")
    return passed(f"the registry lists {REPOSITORY} with the tag {TAG}.")


def _verdict_digest(stored: dict, recorded: str) -> Verdict:
    actual = stored.get("digest")
    if not actual:
        return unjudged(f"the registry has no manifest for {REPOSITORY}:{TAG}.")
    if not recorded:
        return failed(f"No digest was recorded; the registry's is {actual}.")
    if recorded != actual:
        return failed(f"The recorded digest {recorded[:19]}... is not the registry's manifest "
                      f"digest {actual[:19]}...: the image id (image.id) is the digest of the "
                      "image's config, not of the manifest the registry stores. Record the "
                      "digest the push reports, or get_registry_data(reference).id.")
    return passed(f"the recorded digest is the registry's: {actual}.")


def _verdict_pull(sandbox: Sandbox, registry: str, recorded: str, stored: dict) -> Verdict:
    digest = recorded or ""
    if not _DIGEST.match(digest) or digest != stored.get("digest"):
        return unjudged("there is no recorded digest that the registry knows to pull.")
    client = sandbox.client
    reference = f"{registry}/{REPOSITORY}@{digest}"
    _untag_everything_under(client, f"{registry}/")  # the pull must come from the registry
    try:
        image = client.images.pull(reference)
    except docker.errors.APIError as exc:
        return failed(f"docker pull {reference} failed: {exc.explanation or exc}")
    sandbox.details["pulled_id"] = image.id
    sandbox.details["source_id"] = sandbox.reference(SOURCE_IMAGE).id
    if reference not in (image.attrs.get("RepoDigests") or []):
        return failed(f"The pulled image does not carry {reference} in its RepoDigests.")
    return passed(f"docker pull {reference} gave image {image.short_id}.")


def busybox_came_back(details: dict) -> Verdict:
    """What came back by digest is the course's busybox (by the ID the judge recorded): the hidden
    test of pull_by_digest."""
    pulled, source = details.get("pulled_id"), details.get("source_id")
    if pulled and pulled == source:
        return passed("the image pulled by digest is the course's busybox.")
    return failed(f"The image pulled by digest is {str(pulled)[7:19] or 'nothing'}, not the "
                  f"course's busybox ({str(source)[7:19]}): tag and push busybox, as the lab "
                  "asks.")


LAB = Lab("registry", "registry: push, record the digest, pull by digest", CRITERIA, judge,
          lesson=LESSON, topics=TOPICS, base_image=SOURCE_IMAGE, images=(REGISTRY_IMAGE, TOOL_IMAGE),
          hidden={"pull_by_digest": busybox_came_back}, sealed_ready=True)


#: Run and judge the registry answer at ``answer`` (a folder, or a notebook) → Report. (nbgrader test cells each ask: judged once per answer)
grade = LAB.grade
#: What the learner runs before handing in: the same checks, judged afresh.
self_check = LAB.self_check


def assert_pushed_busybox(answer: str | os.PathLike = ".") -> None:
    """What came back by digest is the course's busybox, the image the lab asks to ship."""
    verdict = busybox_came_back(grade(answer).details)
    assert verdict.passed, verdict.feedback
