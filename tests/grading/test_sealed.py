"""Sealed grading against hostile submissions: real engine, real nbgrader, real sealed engines.

What a learner could do under nbgrader's own autograde (which runs every cell in the grader's
kernel) is tried here through `nbgrader autograde` with SealedJudge, through `docklab grade`, and
through the sealed judge directly, and must come to nothing: no forged score, nothing written or
read on the grading host, no way out to the host's ports or the cloud metadata address, and each
runaway build stopped at its bound. Afterwards the host's engine holds nothing the grading made.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from docklab import labels
from docklab.checks.answer import dockerfile_from_notebook
from docklab.checks.sandbox import Limits
from docklab.grading.judge import judge_cells
from docklab.grading.sealed import SealedEngine, SealedLimits
from tests.conftest import run_docklab
from tests.labs.roundtrip import copy_course, round_trip, set_cell

pytestmark = pytest.mark.engine

ROOT = Path(__file__).resolve().parents[2]
GOOD, _ = dockerfile_from_notebook(ROOT / "solutions" / "mobysay" / "mobysay.ipynb")
GETATTR_CHEAT = 'mobysay = type("M", (), {"__getattr__": lambda s, n: lambda *a, **k: s})()'
MiB = 1024 * 1024


def _dockerfile(text: str) -> dict[str, str]:
    return {"dockerfile": "%%writefile Dockerfile\n" + text}


def _added_cell(notebook, source: str) -> None:
    """A cell the learner added after the answer cell (no nbgrader metadata)."""
    index = next(i for i, c in enumerate(notebook.cells) if c.get("id") == "dockerfile")
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source))


def _host_state(client) -> dict:
    """Everything on the host's engine that grading could leave behind."""
    return {
        "containers": {c.id for c in client.containers.list(all=True)},
        "images": {i.id for i in client.images.list(all=True)},
        "volumes": {v.name for v in client.volumes.list()},
        "networks": {n.id for n in client.networks.list()},
        "swarm": (client.info().get("Swarm") or {}).get("LocalNodeState"),
    }


@pytest.fixture(scope="module")
def host_before(client):
    """The host engine's state before this module graded anything."""
    return _host_state(client)


@pytest.fixture(scope="module")
def host_marks(tmp_path_factory):
    """Places on the grading host that learner code would touch if it ever ran here."""
    folder = tmp_path_factory.mktemp("host")
    return {"file": folder / f"pwned-{uuid.uuid4().hex[:8]}",
            "bind": folder / "bind", "secret": "docklab-secret-" + uuid.uuid4().hex}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, host_marks, host_before):
    """One nbgrader round trip of mobysay with hostile submissions, through SealedJudge."""
    learner = "sealed-" + tmp_path_factory.mktemp("id").name[-6:]
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCKLAB_LEARNER", learner)
    host_marks["bind"].mkdir()
    course = copy_course(tmp_path_factory.mktemp("course"), "mobysay")
    (course / "gradebook-marker.txt").write_text(host_marks["secret"])

    def patched(notebook):
        set_cell(notebook, "dockerfile", "%%writefile Dockerfile\nFROM debian:12\n")
        _added_cell(notebook, "from docklab.checks import base\n"
                              "base.Report.assert_passed = lambda *a, **k: None")

    def reaches_host(notebook):
        set_cell(notebook, "dockerfile", "%%writefile Dockerfile\n" + GOOD)
        _added_cell(notebook, f"open({str(host_marks['file'])!r}, 'w').write('x')")
        _added_cell(notebook, "import docker\ndocker.from_env().containers.run('busybox', "
                              "['touch', '/h/pwned'], remove=True, volumes={"
                              f"{str(host_marks['bind'])!r}: {{'bind': '/h'}}}})")
        _added_cell(notebook, "print(open('../../../gradebook.db', 'rb').read()[:4000]); "
                              "print(open('../../../gradebook-marker.txt').read()); "
                              "print(open('../../../source/mobysay/mobysay.ipynb').read())")

    students = {
        "honest": lambda nb: set_cell(nb, "dockerfile", "%%writefile Dockerfile\n" + GOOD),
        "untouched": None,
        "getattr": lambda nb: set_cell(nb, "dockerfile", GETATTR_CHEAT),
        "patched": patched,
        "reacher": reaches_host,
    }
    yield {"course": course, "learner": learner, **round_trip(course, "mobysay", students)}
    mp.undo()


def test_scores_are_what_the_dockerfile_alone_earns(graded):
    assert graded["scores"] == {"honest": 10.0, "untouched": 0.0, "getattr": 0.0,
                                "patched": 2.0, "reacher": 10.0}
    assert graded["cells"]["patched"]["test_builds"] == 1
    assert graded["cells"]["patched"]["test_base_debian"] == 1


def test_added_cells_do_nothing_on_the_grading_host(graded, host_marks):
    assert not host_marks["file"].exists()
    assert not (host_marks["bind"] / "pwned").exists()


def test_added_cells_get_no_output_and_reveal_nothing(graded, host_marks):
    notebook = graded["course"] / "autograded" / "reacher" / "mobysay" / "mobysay.ipynb"
    text = notebook.read_text()
    assert host_marks["secret"] not in text and "SQLite format" not in text
    for cell in nbformat.read(notebook, as_version=4).cells:
        grading = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and not grading.get("grade"):
            assert cell.outputs == [], cell.source[:80]


def test_grade_cells_show_the_checks_feedback(graded):
    notebook = graded["course"] / "autograded" / "patched" / "mobysay" / "mobysay.ipynb"
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nbformat.read(notebook, 4).cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    assert cells["test_builds"].outputs[0]["output_type"] == "stream"
    error = cells["test_apt_chained"].outputs[0]
    assert error["output_type"] == "error" and "cowsay" in error["evalue"]


def test_feedback_is_generated_from_the_sealed_verdicts(graded):
    assert graded["feedback"]["success"], graded["feedback"].get("error")
    html = (graded["course"] / "feedback" / "patched" / "mobysay" / "mobysay.html").read_text()
    assert "LabCheckFailed" in html


def test_grading_leaves_nothing_on_the_host_engine(client, graded):
    left = labels.find_labelled(client, learner=graded["learner"])
    assert not any(left.values()), left
    sealed = client.containers.list(all=True, filters={"ancestor": "docklab/sealed-engine"})
    assert not [c for c in sealed if c.labels.get(labels.LEARNER) == graded["learner"]]


# -- the sealed judge directly: runaway and escaping builds ------------------------------------

SMALL = SealedLimits(pids=200, disk=512 * MiB, memory=1536 * MiB)


def _judge(dockerfile: str, **limits):
    return judge_cells("mobysay", _dockerfile(dockerfile), sealed_limits=SMALL,
                       limits=Limits(**{"build_timeout": 20.0, **limits}))


def test_a_fork_bomb_stops_the_sandbox_at_its_pids_bound():
    started = time.monotonic()
    report = _judge('FROM debian:12\nRUN bash -c "f(){ f|f & }; f; sleep 100"\n')
    # (Once, in a clean clone's serial phase on Engine 26.1, no bound was hit: say what was seen.)
    assert report.details.get("stopped_at") == "pids", (report.table(), report.details)
    assert report.score == 0 and "process limit" in report["builds"].feedback
    assert time.monotonic() - started < 60


def test_a_fork_bomb_between_two_looks_is_still_seen(monkeypatch):
    # In CI a loaded host let a fork bomb rise and break the build (0.8 s) before the watchdog
    # looked once; the process count was back down at the end. Here the watchdog's looks see
    # nothing, and a burst of 400 processes (the bound is 200) is over in 3 s: only the
    # kernel's count of refused forks can tell, and it must.
    monkeypatch.setattr(SealedEngine, "_at_pids_limit", lambda self: False)
    report = _judge("FROM debian:12\nRUN for i in $(seq 400); do sleep 3 & done; wait\n")
    assert report.details.get("stopped_at") == "pids", (report.table(), report.details)


def test_a_build_within_the_bounds_has_no_refused_fork(monkeypatch):
    # The other side: a build that forks a few hundred processes one after another, below the
    # bound, is not taken for a fork bomb.
    monkeypatch.setattr(SealedEngine, "_at_pids_limit", lambda self: False)
    report = _judge('FROM debian:12\nRUN for i in $(seq 300); do true & wait; done\n')
    assert "stopped_at" not in report.details, (report.table(), report.details)
    assert report["builds"].passed, report.table()


def test_a_disk_filler_stops_at_the_sandbox_disk():
    report = _judge("FROM debian:12\nRUN dd if=/dev/zero of=/fill bs=1M count=2000\n")
    assert not report["builds"].passed
    assert "No space left on device" in report["builds"].feedback


def test_an_output_flood_stops_at_the_log_bound():
    report = _judge("FROM debian:12\nRUN yes\n")
    assert "printed more than" in report["builds"].feedback  # 2 MiB, or BuildKit clipped it


def test_an_endless_build_stops_at_the_build_timeout():
    started = time.monotonic()
    report = _judge("FROM debian:12\nRUN sleep 100000\n", build_timeout=10.0)
    assert "did not finish within 10 s" in report["builds"].feedback
    assert time.monotonic() - started < 60


def test_a_buildkit_only_dockerfile_grades_as_it_builds_for_the_learner():
    # A cache mount and a heredoc: what `docker build` (BuildKit) takes and the legacy builder
    # refuses. The sealed engine's BuildKit builds it, through the proxy, with every bound.
    from tests.integration.test_sandbox_builders import BUILDKIT_ONLY

    report = judge_cells("mobysay", _dockerfile(BUILDKIT_ONLY))
    assert report.details["builder"] == "buildkit"
    assert report.score == report.max_score == 10, report.table()


def test_add_from_the_metadata_address_fails():
    report = _judge("FROM debian:12\nADD http://169.254.169.254/latest/meta-data/ /m\n")
    assert not report["builds"].passed
    assert "169.254.169.254" in report["builds"].feedback


class _Listener:
    """A TCP service on every address of the grading host; counts who connects."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen()
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nhost-secret\n")
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def test_the_hosts_own_ports_are_out_of_reach(client):
    # Every IPv4 address of the grading host but loopback: docker0's gateway, the LAN's.
    shown = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True,
                           check=True).stdout
    addresses = {line.split()[3].split("/")[0] for line in shown.splitlines()} - {"127.0.0.1"}
    assert addresses
    gateway = min(addresses)
    listener = _Listener()
    try:
        lines = ["FROM debian:12"]
        for address in sorted(addresses):
            url = f"{address}:{listener.port}"
            lines += [
                # straight out, from a RUN
                f"RUN bash -c 'exec 3<>/dev/tcp/{address}/{listener.port} && cat <&3' || true",
                # through the grading proxy, as CONNECT and as a plain proxied GET
                (f"RUN bash -c 'exec 3<>/dev/tcp/10.0.2.2/3128 && printf \"CONNECT {url} "
                 "HTTP/1.1\\r\\n\\r\\n\" >&3 && head -c 300 <&3' || true"),
                (f"RUN bash -c 'exec 3<>/dev/tcp/10.0.2.2/3128 && printf \"GET http://{url}/ "
                 "HTTP/1.1\\r\\n\\r\\n\" >&3 && head -c 300 <&3' || true"),
            ]
        report = _judge("\n".join(lines) + "\n")
        # Apart: BuildKit fetches an ADD's URL before it runs the RUNs above, and stops there.
        added = _judge(f"FROM debian:12\nADD http://{gateway}:{listener.port}/secret /secret\n")
    finally:
        listener.close()
    assert listener.connections == 0
    assert not added["builds"].passed
    assert any(entry.startswith("REFUSE") for entry in report.details["network"])
    assert not any(entry.startswith("ALLOW") for entry in report.details["network"])


# -- docklab grade: a class at once -------------------------------------------------------------

def test_docklab_grade_judges_a_class_in_parallel(tmp_path, learner_env):
    from docklab import grader

    course = copy_course(tmp_path, "mobysay")
    api = grader.nbgrader_api(course)
    assert api.generate_assignment("mobysay")["success"]
    release = course / "release" / "mobysay"
    answers = {"ann": GOOD, "ben": GOOD.replace('ENTRYPOINT ["cowsay", "-f", "moby.cow"]',
                                                 "ENTRYPOINT cowsay -f moby.cow"),
               "cid": None, "dan": "FROM debian:12\n"}
    for student, dockerfile in answers.items():
        target = course / "submitted" / student / "mobysay"
        shutil.copytree(release, target)
        notebook = nbformat.read(target / "mobysay.ipynb", as_version=4)
        if dockerfile is not None:
            set_cell(notebook, "dockerfile", "%%writefile Dockerfile\n" + dockerfile)
        if student == "dan":  # the patch that gave 7/10 under nbgrader's own autograde
            _added_cell(notebook, "from docklab.checks import base\n"
                                  "base.Report.assert_passed = lambda *a, **k: None")
        nbformat.write(notebook, target / "mobysay.ipynb")
    out = run_docklab("grade", "mobysay", "--parallel", "2", "--course", str(course), "--json",
                      timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    results = {row["student"]: row for row in json.loads(out.stdout)}
    assert {s: r["score"] for s, r in results.items()} == {"ann": 10, "ben": 6, "cid": 0,
                                                              "dan": 2}
    assert "entrypoint_exec_form" in results["ben"]["failed"]
    assert "grading mobysay" in out.stderr  # the progress bar
    table = run_docklab("grade", "mobysay", "--course", str(course), "--student", "ann",
                        timeout=300)
    assert table.returncode == 0 and "10/10" in table.stdout


def test_root_in_a_graded_build_cannot_touch_the_hosts_kernel_settings():
    core_pattern = Path("/proc/sys/kernel/core_pattern").read_text()
    report = _judge(
        "FROM debian:12\n"
        "RUN (echo '|/tmp/pwn' > /proc/sys/kernel/core_pattern) 2>&1 || true\n"
        "RUN (mkdir -p /c && mount -t cgroup -o memory cgroup /c "
        "&& echo /tmp/pwn > /c/release_agent) 2>&1 || true\n"
        "RUN (mount -t proc proc /mnt && echo '|/tmp/pwn' > /mnt/sys/kernel/core_pattern) "
        "2>&1 || true\n")
    assert report["builds"].passed, report["builds"].feedback
    assert Path("/proc/sys/kernel/core_pattern").read_text() == core_pattern


def test_the_sealed_engine_is_rootless_and_offline(client):
    from docklab.grading.sealed import SealedEngine

    with SealedEngine(client, images=["busybox"]) as sealed:
        info = sealed.client.info()
        assert any("rootless" in option for option in info["SecurityOptions"])
        assert info["ID"] != client.info()["ID"]
        script = ("timeout 5 wget -qO- http://deb.debian.org/ 2>&1; "
                  "timeout 5 wget -qO- http://1.1.1.1/ 2>&1; true")
        out = sealed.client.containers.run(sealed.references["busybox"], ["sh", "-c", script],
                                           remove=True).decode()
    no_dns, no_route = out.splitlines()[:2]
    assert "bad address" in no_dns
    assert "can't connect" in no_route or "unreachable" in no_route.lower(), no_route


def test_a_sandbox_is_stopped_at_its_wall_clock(client):
    import docker.errors
    import requests.exceptions

    from docklab.grading.sealed import SealedEngine

    started = time.monotonic()
    with SealedEngine(client, images=["busybox"], limits=SealedLimits(wall=8)) as sealed:
        with pytest.raises((docker.errors.APIError, requests.exceptions.RequestException)):
            sealed.client.containers.run(sealed.references["busybox"], ["sleep", "60"],
                                         remove=True)
        assert sealed.bound_hit() == "wall"
    assert time.monotonic() - started < 30


def test_the_host_engine_is_left_as_it_was(client, host_before):
    """Runs last in this module: every grading above left nothing on the host's engine."""
    assert _host_state(client) == host_before
