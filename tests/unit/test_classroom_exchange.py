"""The classroom's nbgrader exchange on the host, without an engine: what each learner's container
mounts, and collect reading a learner's inbound as data (tests/classroom runs the whole round trip
through the hub)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from docklab.classroom import exchange
from docklab.classroom.settings import Settings
from docklab.errors import DocklabError
from tests.labs.roundtrip import copy_course

LAB = "lifecycle"


@pytest.fixture
def room(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return Settings(name="test-exchange")


def _mounts_by_target(mounts: dict) -> dict[str, tuple[str, str]]:
    return {bind["bind"]: (host, bind["mode"]) for host, bind in mounts.items()}


def test_a_learner_mounts_the_released_labs_read_only_and_only_their_own_folders(room):
    ada = _mounts_by_target(exchange.learner_mounts(room, "ada"))
    bob = _mounts_by_target(exchange.learner_mounts(room, "bob"))
    course = "/srv/nbgrader/exchange/docklab"
    assert set(ada) == {f"{course}/outbound", f"{course}/inbound", f"{course}/feedback",
                        "/srv/nbgrader/cache"}
    assert ada[f"{course}/outbound"] == bob[f"{course}/outbound"]
    assert ada[f"{course}/outbound"][1] == "ro" and ada[f"{course}/feedback"][1] == "ro"
    assert ada[f"{course}/inbound"][1] == "rw" and ada["/srv/nbgrader/cache"][1] == "rw"
    ada_hosts = {host for host, _ in ada.values()}
    for target in (f"{course}/inbound", f"{course}/feedback", "/srv/nbgrader/cache"):
        assert bob[target][0] not in ada_hosts, target
        assert Path(ada[target][0]).is_dir()
    # The learner's container (uid 1000) writes its inbound; the hub runs as root here.
    if os.geteuid() == 0:
        assert Path(ada[f"{course}/inbound"][0]).stat().st_uid == exchange.LEARNER_UID


@pytest.mark.parametrize("name", ["../bob", "ada+bob", "", ".hidden", "a/b"])
def test_a_name_that_could_reach_another_folder_is_refused(room, name):
    with pytest.raises(DocklabError):
        exchange.learner_mounts(room, name)


def _hand_in(inbound: Path, folder: str, marker: str) -> Path:
    """A submission as nbgrader's submit leaves it: the notebook, timestamp.txt, the secret."""
    path = inbound / folder
    path.mkdir()
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(marker))
    nbformat.write(notebook, path / f"{LAB}.ipynb")
    (path / "timestamp.txt").write_text(folder.split("+")[2])
    (path / "submission_secret.txt").write_text("s3cret")
    return path


def test_collect_takes_each_learners_latest_own_submission_and_copies_regular_files_only(
        room, tmp_path):
    course = copy_course(tmp_path, LAB)
    for name in ("ada", "bob"):
        exchange.learner_mounts(room, name)
    learners = exchange.exchange_path(room) / "learners"
    ada_in, bob_in = learners / "ada" / "inbound", learners / "bob" / "inbound"
    _hand_in(ada_in, f"ada+{LAB}+2026-12-03 08:00:00.000000 UTC+aaa", "first try")
    latest = _hand_in(ada_in, f"ada+{LAB}+2026-12-03 08:05:00.000000 UTC+bbb", "ada's answer")
    _hand_in(bob_in, f"bob+{LAB}+2026-12-03 08:01:00.000000 UTC+ccc", "bob's answer")
    # Ada, in her own inbound: a later submission in Bob's name, and links to the host's files.
    _hand_in(ada_in, f"bob+{LAB}+2099-01-01 00:00:00.000000 UTC+zzz", "forged for bob")
    host_secret = tmp_path / "gradebook-secret.txt"
    host_secret.write_text("the instructor's")
    (latest / "leak.txt").symlink_to(host_secret)
    (latest / "leak-dir").symlink_to(tmp_path)
    os.mkfifo(latest / "pipe")
    (latest / "notes").mkdir()
    (latest / "notes" / "run.sh").write_text("docker run busybox\n")
    (latest / "timestamp.txt").write_text("2000-01-01 00:00:00 UTC")  # an earlier claim

    results = {r.learner: r for r in exchange.collect(room, course, LAB)}

    ada, bob = results["ada"], results["bob"]
    assert ada.submission == latest.name
    submitted = course / "submitted"
    assert sorted(ada.files) == sorted([f"{LAB}.ipynb", "notes/run.sh", "submission_secret.txt",
                                        "timestamp.txt"])
    assert "ada's answer" in (submitted / "ada" / LAB / f"{LAB}.ipynb").read_text()
    assert not (submitted / "ada" / LAB / "leak.txt").exists()
    assert not (submitted / "ada" / LAB / "leak-dir").exists()
    assert not (submitted / "ada" / LAB / "pipe").exists()
    assert (submitted / "ada" / LAB / "timestamp.txt").read_text() == \
        "2026-12-03 08:05:00.000000 UTC"
    skipped = "\n".join(ada.skipped)
    assert "leak.txt: a symlink" in skipped and "pipe: not a regular file" in skipped
    assert "names 'bob'" in skipped
    # Bob's submission is his own, whatever Ada's inbound says in his name.
    assert bob.submission.startswith(f"bob+{LAB}+2026-12-03 08:01")
    text = (submitted / "bob" / LAB / f"{LAB}.ipynb").read_text()
    assert "bob's answer" in text and "forged" not in text


def test_collect_bounds_what_one_submission_may_hold(room, tmp_path, monkeypatch):
    course = copy_course(tmp_path, LAB)
    exchange.learner_mounts(room, "ada")
    inbound = exchange.exchange_path(room) / "learners" / "ada" / "inbound"
    folder = _hand_in(inbound, f"ada+{LAB}+2026-12-03 08:00:00.000000 UTC+aaa", "answer")
    (folder / "big.bin").write_bytes(b"x" * 4096)
    monkeypatch.setattr(exchange, "MAX_BYTES", 3000)
    [ada] = exchange.collect(room, course, LAB)
    assert "big.bin" not in ada.files
    assert any(line.startswith("big.bin: over") for line in ada.skipped), ada.skipped


def test_collect_of_a_learner_who_handed_nothing_in_takes_nothing(room, tmp_path):
    course = copy_course(tmp_path, LAB)
    exchange.learner_mounts(room, "cy")
    [cy] = exchange.collect(room, course, LAB)
    assert cy.submission == "" and cy.files == []
    assert not (course / "submitted" / "cy").exists()
