"""The classroom end to end: a real JupyterHub on this host, three learners logged in through its
REST API, 02-running's cells run in each learner's kernel (through the hub's proxy) on that
learner's own engine, and the isolation between them and from the host's engine. Then, in the
Docker-in-Docker classroom, a lab goes round nbgrader's exchange: released, fetched and done by
two learners, submitted, collected, graded on sealed engines, its feedback fetched by each.

One classroom per kind of engine (rootful Docker-in-Docker, rootless): up takes ~10 s once the
learner image is built, ~30 s when it is not; three servers start in ~15 s together.
DOCKLAB_CLASSROOM_ENGINE_BIND=0.0.0.0 starts the Docker-in-Docker engines listening on every
interface instead of the learner's loopback: the isolation test then fails (a learner drives
another's engine), as it must.
"""

from __future__ import annotations

import json
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import nbformat
import pytest
import requests

from docklab import labels as L
from docklab.classroom import exchange
from docklab.classroom import hub as classroom_hub
from docklab.classroom.engine import engine_names
from docklab.classroom.remote import ClassroomError
from docklab.classroom.settings import CLASSROOM, Settings
from tests.conftest import run_docklab

ROOT = Path(__file__).resolve().parents[2]
LEARNERS = ("ada", "bob", "cy")
#: 02-running's cells a learner runs here, by their first line: set-up, run, the wrong order,
#: create + start, ps, logs, inspect, exec, %docker run + logs --follow, cleanup.
CELLS_OF_02 = ("# Setup:", "# docker run --rm busybox echo hello world",
               "# docker run busybox --rm echo", "# docker create --name life",
               "# docker start life", "# docker run --name done", "# docker run --name chatty",
               "# docker run -d --init --name probe", "# docker exec probe hostname",
               "%docker run -d --name ticker", "# docker rm -f $(docker ps -aq")


def _free_port_block(size: int = 3) -> int:
    """A port p with p .. p+size-1 free on 127.0.0.1 (the hub, its API, the proxy's API)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size > 65535:
            continue
        try:
            sockets = []
            for port in range(base, base + size):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free ports")


@pytest.fixture(scope="module", params=["dind", "rootless"])
def room(request):
    prefix = os.environ.get("DOCKLAB_PREFIX") or "test"
    settings = Settings(name=f"{prefix}-classroom-{os.urandom(3).hex()}", port=_free_port_block(),
                        images=("busybox",), engine_kind=request.param,
                        engine_bind=os.environ.get("DOCKLAB_CLASSROOM_ENGINE_BIND", "127.0.0.1"))
    try:
        hub = classroom_hub.up(settings, say=lambda line: None)
        hub.add_learners(*LEARNERS)
        yield settings, hub
    finally:
        classroom_hub.down(settings, purge=True, say=lambda line: None)


@pytest.fixture(scope="module")
def learners(room):
    """The three learners, logged in with the class password, their servers started together."""
    settings, hub = room
    password = settings.secret("password")
    logged_in = {name: hub.login(name, password) for name in LEARNERS}
    for learner in logged_in.values():
        learner.start_server()
    with ThreadPoolExecutor(len(LEARNERS)) as pool:
        list(pool.map(lambda learner: learner.wait_until_ready(), logged_in.values()))
    return logged_in


@pytest.fixture(scope="module")
def host():
    client = docker.from_env()
    yield client
    client.close()


def _cells_of_02() -> list[str]:
    notebook = nbformat.read(ROOT / "notebooks" / "02-running.ipynb", as_version=4)
    cells = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    chosen = [next(s for s in cells if s.startswith(first)) for first in CELLS_OF_02]
    return chosen


def test_a_wrong_password_does_not_log_in(room):
    _, hub = room
    with pytest.raises(ClassroomError, match="HTTP 403"):
        hub.login("ada", "not-the-password")


def test_each_learner_runs_02_running_through_the_hub_on_their_own_engine(learners, host):
    cells = _cells_of_02()

    def run(learner):
        with learner.kernel() as kernel:
            out = [kernel.run(cell, timeout=120) for cell in cells]
            engine_id = kernel.run("print(client.info()['ID'])").strip()
            # a private engine: names as the learner types them, as `%docker` cells use them
            named = kernel.run("print(lesson.name('web'))").strip()
        assert named == "web", f"lesson.name('web') is {named!r} in a learner's kernel"
        return out, engine_id

    with ThreadPoolExecutor(len(learners)) as pool:
        results = dict(zip(learners, pool.map(run, learners.values()), strict=True))
    for name, (out, _) in results.items():
        text = "".join(out)
        assert "connected to Docker Engine" in text, name
        assert "hello world" in out[1], name
        assert "after start:  running" in out[4], name
        assert "tick 5" in out[9], f"{name}: %docker logs --follow printed {out[9]!r}"
        assert "removed containers:" in out[10], name
    engines = {engine_id for _, engine_id in results.values()}
    assert len(engines) == len(learners), "two learners share an engine"
    assert host.info()["ID"] not in engines, "a learner's notebook drives the host's engine"


def _ip_of(host, settings: Settings, learner: str) -> str:
    container = host.containers.get(f"{settings.name}-{learner}")
    return container.attrs["NetworkSettings"]["Networks"][settings.network]["IPAddress"]


def test_a_learner_cannot_list_stop_or_reach_another_learners_engine_nor_the_hosts(
        room, learners, host):
    settings, _ = room
    ada, bob = learners["ada"], learners["bob"]
    bob_ip = _ip_of(host, settings, "bob")
    gateway = host.networks.get(settings.network).attrs["IPAM"]["Config"][0]["Gateway"]
    with bob.kernel() as kernel:
        kernel.run("import docker; docker.from_env().containers.run('busybox', 'sleep 600', "
                   "name='bobs-work', detach=True, labels={'org.docklab.managed': 'true'})")
    with ada.kernel() as kernel:
        kernel.run("import docker, os, socket; mine = docker.from_env()")
        # Her own engine does not have Bob's container: she can neither list it nor stop it.
        assert "bobs-work" not in kernel.run(
            "print([c.name for c in mine.containers.list(all=True)])")
        with pytest.raises(ClassroomError, match="NotFound"):
            kernel.run("mine.containers.get('bobs-work').stop()")
        # Bob's engine listens on Bob's loopback (Docker-in-Docker) or on a socket in a volume
        # only his containers mount (rootless): from Ada's container, his address refuses.
        reach = (f"print(docker.DockerClient(base_url='tcp://{bob_ip}:2375', timeout=5)"
                 ".containers.list())")
        with pytest.raises(ClassroomError, match="ConnectionError|ConnectTimeout|refused"):
            kernel.run(reach, timeout=60)
        # No host engine socket in her container, nothing on the host's side of the network.
        assert kernel.run("print([p for p in ('/var/run/docker.sock', '/run/docker.sock') "
                          "if os.path.exists(p)])").strip() == "[]"
        for port in (2375, 2376):
            assert kernel.run(
                f"s = socket.socket(); s.settimeout(3); print(s.connect_ex(('{gateway}', {port})))"
            ).strip() != "0", f"the host answers on {gateway}:{port}"
        # What her engine shows is not the host's engine: no classroom container is in it.
        names = kernel.run("print([c.name for c in mine.containers.list(all=True)])")
        assert f"{settings.name}-ada" not in names
    assert host.containers.get(f"{settings.name}-bob-engine").status == "running"
    # What Ada's container mounts is hers: a volume of her own (the rootless engine's socket),
    # her folders of the exchange; the released labs are the one folder shared, and read-only.
    ada_mounts = host.containers.get(f"{settings.name}-ada").attrs["Mounts"]
    shared = exchange.exchange_path(settings)
    for mount in ada_mounts:
        if mount["Type"] == "volume":
            assert mount["Name"].startswith(f"{settings.name}-ada-"), mount
        elif Path(mount["Source"]) == shared / "outbound":
            assert not mount["RW"], mount
        else:
            assert Path(mount["Source"]).parent == shared / "learners" / "ada", mount


def test_root_in_a_learners_container_is_root_on_the_host_only_with_docker_in_docker(
        room, learners):
    """What the two engines differ in: the user namespace. Under the rootless engine, uid 0 in a
    learner's container is uid 1000 of the sidecar (an unprivileged uid of the host's); under
    Docker-in-Docker it is the host's root, which is why DESIGN calls that engine root on the
    host."""
    settings, _ = room
    with learners["cy"].kernel() as kernel:
        uid_map = kernel.run(
            "import docker; print(docker.from_env().containers.run('busybox', "
            "'cat /proc/self/uid_map', remove=True).decode().split())").strip()
    if settings.engine_kind == "rootless":
        assert uid_map != "['0', '0', '4294967295']", "root in the container is the host's root"
    else:
        assert uid_map == "['0', '0', '4294967295']", uid_map


def test_every_learner_is_bounded_and_labelled(room, learners, host):
    settings, _ = room
    for name in learners:
        lab = host.containers.get(f"{settings.name}-{name}")
        engine = host.containers.get(engine_names(lab.name)[0])
        for container in (lab, engine):
            assert container.labels[L.MANAGED] == "true"
            assert container.labels[CLASSROOM] == settings.name
            assert container.labels[L.LEARNER] == name
            assert container.labels[L.LESSON] == "classroom"
        assert lab.attrs["HostConfig"]["Memory"] == 2**30
        assert lab.attrs["HostConfig"]["PidsLimit"] == settings.pids
        assert lab.attrs["HostConfig"]["CpuQuota"] == 100_000
        assert not any(m.get("Source") in ("/var/run/docker.sock", "/run/docker.sock")
                       for m in lab.attrs["Mounts"])
        assert engine.attrs["HostConfig"]["Memory"] == 2 * 2**30
        assert engine.attrs["HostConfig"]["PidsLimit"] == settings.engine.pids
        assert engine.attrs["HostConfig"]["NanoCpus"] == 10**9
        assert engine.attrs["HostConfig"]["NetworkMode"] == f"container:{lab.id}"


def test_status_shows_each_learners_server_engine_and_memory(room, learners):
    settings, _ = room
    report = classroom_hub.status(settings)
    assert report["hub"] == "running"
    for name in LEARNERS:
        learner = report["learners"][name]
        assert learner["server"] == "ready", learner
        roles = {c["role"]: c for c in learner["containers"].values()}
        assert set(roles) == {"jupyterlab", "engine"}
        assert all(c["status"] == "running" and c["memory_mib"] > 0 for c in roles.values())


def test_the_docklab_classroom_command_adds_a_learner_and_reports_status(room, learners):
    settings, _ = room
    env = {"DOCKLAB_PREFIX": "", "DOCKLAB_CLASSROOM_NAME": settings.name,
           "DOCKLAB_CLASSROOM_PORT": str(settings.port)}
    added = run_docklab("classroom", "add", "dee", env=env)
    assert added.returncode == 0, added.stderr
    shown = run_docklab("classroom", "status", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["hub"] == "running"
    assert report["learners"]["dee"]["server"] == "stopped"
    assert report["learners"]["ada"]["server"] == "ready"
    assert "instructor" not in report["learners"] or report["learners"]["instructor"]["admin"]


def test_the_idle_culler_runs_beside_the_hub(room):
    _, hub = room
    services = hub.api("GET", "/services").json()  # {name: service}
    assert services["idle-culler"]["pid"] > 0, services


# -- nbgrader's exchange: release → work → collect → sealed autograde → feedback ----------------

#: The lab handed out: lifecycle needs only busybox on the learners' engines and grades in seconds.
LAB = "lifecycle"
INBOUND = "/srv/nbgrader/exchange/docklab/inbound"
OUTBOUND = "/srv/nbgrader/exchange/docklab/outbound"
FEEDBACK = "/srv/nbgrader/exchange/docklab/feedback"
#: The cells a learner runs (the graded tests and the self-check are left to grading).
LAB_CELLS = ("setup", "run-broken", "investigate", "answers", "record", "dockerfile", "try-it",
             "look", "cleanup")
#: The exchange does not depend on the learners' engine: its round trip runs in the
#: Docker-in-Docker classroom only (the same hub as that classroom's other tests).
in_one_classroom = pytest.mark.parametrize("room", ["dind"], indirect=True)


def _do_the_lab(learner, cells: dict[str, str]) -> dict:
    """Fetch LAB (the Assignments tab's button), run its cells with the learner's answers in a
    kernel of their server, on their own engine, save the notebook and submit it."""
    learner.assignment("fetch", LAB)
    path = f"assignments/{LAB}/{LAB}.ipynb"
    notebook = learner.contents(path)["content"]
    for cell in notebook["cells"]:
        if cell.get("id") in cells:
            cell["source"] = cells[cell["id"]]
    with learner.kernel(f"assignments/{LAB}") as kernel:
        outputs = {cell["id"]: kernel.run(cell["source"], timeout=180)
                   for cell in notebook["cells"] if cell.get("id") in LAB_CELLS}
    learner.save_notebook(path, notebook)
    listed = learner.assignment("submit", LAB)
    return {"outputs": outputs, "listed": listed}


#: Run in Ada's kernel once both have handed in: what she can see and do in the exchange. (Its
#: first line, made by the test, sets INBOUND, OUTBOUND, FEEDBACK, BOB_INBOUND, GRADEBOOK, LAB.)
_ADA_TRIES = """
import glob, os, shutil
found = {"bob's anywhere": glob.glob("/srv/**/bob+*", recursive=True),
         "mine": sorted(os.listdir(INBOUND)), "feedback": sorted(os.listdir(FEEDBACK))}
release = f"{OUTBOUND}/{LAB}"
tries = {}
def attempt(what, action):
    try:
        action()
        tries[what] = "done"
    except OSError as exc:
        tries[what] = type(exc).__name__
attempt("overwrite the release", lambda: open(f"{release}/{LAB}.ipynb", "w").write("{}"))
attempt("delete the release", lambda: os.remove(f"{release}/{LAB}.ipynb"))
attempt("add to the release", lambda: open(f"{release}/extra.txt", "w").write("x"))
attempt("read bob's inbound", lambda: os.listdir(BOB_INBOUND))
attempt("write bob's feedback", lambda: open(f"{FEEDBACK}/bob.html", "w").write("x"))
# What she can do, in her own inbound: hand in a blank notebook in Bob's name, with a later time,
# and link the host's gradebook into her own submission.
attempt("hand in as bob", lambda: shutil.copytree(
    release, f"{INBOUND}/bob+{LAB}+2099-01-01 00:00:00.000000 UTC+forged"))
attempt("link the gradebook", lambda: os.symlink(
    GRADEBOOK, f"{INBOUND}/{found['mine'][-1]}/gradebook.db"))
print(json.dumps({"found": found, "tries": tries}))
"""


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course root of the instructor's, with the lab's source (not the checkout's grader/)."""
    from tests.labs.roundtrip import copy_course

    return copy_course(tmp_path_factory.mktemp("course"), LAB)


@pytest.fixture(scope="module")
def class_round_trip(room, learners, course):
    """The instructor releases LAB; Ada hands in the right answer and Bob a wrong one, each from
    their own JupyterLab and engine; Ada then tries Bob's submission and the release; the
    instructor collects, grades on sealed engines and returns feedback; both fetch it."""
    from tests.labs.test_lifecycle import CMD, GOOD, PROP, RIGHT_CELL, edit

    settings, _ = room
    env = {"DOCKLAB_PREFIX": "", "DOCKLAB_CLASSROOM_NAME": settings.name,
           "DOCKLAB_CLASSROOM_PORT": str(settings.port)}
    seconds, started = {}, time.monotonic()

    def step(name: str) -> None:
        nonlocal started
        seconds[name] = round(time.monotonic() - started, 1)
        started = time.monotonic()

    released = run_docklab("classroom", "release", LAB, "--course", str(course), env=env)
    assert released.returncode == 0, released.stderr
    step("release")
    answers = {"ada": {"answers": RIGHT_CELL, "dockerfile": f"%%writefile Dockerfile\n{GOOD}"},
               "bob": {"answers": RIGHT_CELL,
                       "dockerfile": f"%%writefile Dockerfile\n{edit(CMD, PROP)}"}}
    with ThreadPoolExecutor(2) as pool:
        work = dict(zip(answers, pool.map(lambda name: _do_the_lab(learners[name], answers[name]),
                                          answers), strict=True))
    step("fetch, work, submit")
    bob_inbound = exchange.exchange_path(settings) / "learners" / "bob" / "inbound"
    names = [INBOUND, OUTBOUND, FEEDBACK, str(bob_inbound), str(course / "gradebook.db"), LAB]
    code = (f"import json; INBOUND, OUTBOUND, FEEDBACK, BOB_INBOUND, GRADEBOOK, LAB = "
            f"json.loads({json.dumps(names)!r})\n" + _ADA_TRIES)
    with learners["ada"].kernel() as kernel:
        ada_tries = json.loads(kernel.run(code))
    step("ada's tries")
    collected = run_docklab("classroom", "collect", LAB, "--course", str(course), env=env)
    assert collected.returncode == 0, collected.stderr
    step("collect")
    graded = run_docklab("grade", LAB, "--course", str(course), "--json", timeout=600)
    assert graded.returncode == 0, graded.stderr
    grades = {g["student"]: g for g in json.loads(graded.stdout)}
    # (Once, in a clean clone's run, Ada's grade had an error that this line cut off; grading
    # her submission again passed: say it whole.)
    errors = {student: g["error"] for student, g in grades.items() if g["error"]}
    assert not errors, errors
    step("sealed autograde")
    returned = run_docklab("classroom", "feedback", LAB, "--course", str(course), env=env)
    assert returned.returncode == 0, returned.stderr
    pages = {}
    for name in answers:
        learner = learners[name]
        learner.assignment("fetch_feedback", LAB)
        [when] = learner.contents(f"assignments/{LAB}/feedback")["content"]
        pages[name] = learner.contents(f"{when['path']}/{LAB}.html")["content"]
    with learners["ada"].kernel() as kernel:
        ada_feedback = json.loads(kernel.run(
            f"import json, os; print(json.dumps(sorted(os.listdir({FEEDBACK!r}))))"))
    step("feedback")
    print(f"exchange round trip, two learners: {seconds} ({sum(seconds.values()):.0f} s)")
    return {"settings": settings, "work": work, "ada_tries": ada_tries,
            "collect": collected.stdout, "grades": grades,
            "feedback": returned.stdout, "pages": pages, "ada_feedback": ada_feedback,
            "seconds": seconds}


@in_one_classroom
def test_learners_fetch_a_released_lab_work_on_their_own_engine_and_submit(
        class_round_trip, course):
    for name, done in class_round_trip["work"].items():
        assert "Hello from a container that stays up!" in done["outputs"]["look"], (
            name, done["outputs"]["look"])
        [listed] = [a for a in done["listed"] if a["status"] == "submitted"]
        assert listed["assignment_id"] == LAB and listed["submissions"], listed
    released = exchange.exchange_path(class_round_trip["settings"]) / "outbound" / LAB
    assert (released / f"{LAB}.ipynb").is_file()
    assert "HIDDEN" not in (released / f"{LAB}.ipynb").read_text()


@in_one_classroom
def test_a_learner_cannot_read_overwrite_or_delete_anothers_submission_nor_the_release(
        class_round_trip, course):
    found, tries = class_round_trip["ada_tries"]["found"], class_round_trip["ada_tries"]["tries"]
    assert found["bob's anywhere"] == [], "Ada's container holds a path to Bob's submission"
    assert found["mine"] and all(n.startswith(f"ada+{LAB}+") for n in found["mine"]), found
    for what in ("overwrite the release", "delete the release", "add to the release",
                 "read bob's inbound", "write bob's feedback"):
        assert tries[what] != "done", f"Ada could {what}"
    # What she could do in her own inbound came to nothing: Bob's collected submission is his,
    # and the link to the host's gradebook was not followed.
    assert tries["hand in as bob"] == tries["link the gradebook"] == "done"
    bob = (course / "submitted" / "bob" / LAB / f"{LAB}.ipynb").read_text()
    assert "tail -f /dev/null" in bob, "Bob's submission is not the one he handed in"
    assert not (course / "submitted" / "ada" / LAB / "gradebook.db").exists()
    assert "names 'bob'" in class_round_trip["collect"]
    assert "gradebook.db: a symlink" in class_round_trip["collect"]


@in_one_classroom
def test_sealed_autograde_scores_the_right_and_the_wrong_answer_apart(class_round_trip):
    grades = class_round_trip["grades"]
    assert set(grades) == {"ada", "bob"}, grades
    assert (grades["ada"]["score"], grades["ada"]["max_score"]) == (9, 9), grades["ada"]
    # Bob's tail -f prop passes what the learner's self-check shows; the hidden PID 1 test
    # takes keeps_running's 2 points.
    assert grades["bob"]["score"] == 7 and grades["bob"]["failed"] == ["keeps_running"], \
        grades["bob"]


@in_one_classroom
def test_each_learner_fetches_their_own_feedback_and_only_theirs(class_round_trip):
    pages = class_round_trip["pages"]
    assert "(Score: 9.0 / 9.0)" in pages["ada"]
    assert "(Score: 7.0 / 9.0)" in pages["bob"] and "not the app's httpd" in pages["bob"]
    assert "not the app's httpd" not in pages["ada"]
    settings = class_round_trip["settings"]
    folder = exchange.exchange_path(settings) / "learners"
    mine = sorted(p.name for p in (folder / "ada" / "feedback").iterdir())
    bobs = {p.name for p in (folder / "bob" / "feedback").iterdir()}
    assert class_round_trip["ada_feedback"] == mine and len(mine) == 1
    assert not bobs & set(mine)
    assert "returned to 2 learner(s)" in class_round_trip["feedback"]


def test_down_leaves_nothing_of_the_classroom_behind(room, learners, host):
    settings, _ = room
    classroom_hub.down(settings, purge=True, say=lambda line: None)
    selected = classroom_hub.classroom_filter(settings)
    assert host.containers.list(all=True, filters=selected) == []
    assert host.volumes.list(filters=selected) == []
    assert host.networks.list(filters=selected) == []
    assert not settings.state_path.exists()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{settings.url}/hub/api/", timeout=5)
