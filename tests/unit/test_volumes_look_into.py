"""The volumes lab's look into a volume after its containers are gone: a helper whose output the
engine lost is not taken for "the note is not in it" (no engine: a fake sandbox)."""

from __future__ import annotations

import docker.errors

from docklab.checks.sandbox import RunResult
from docklab.checks.volumes import _LISTED, Runner


class _Sandbox:
    """Its engine has the volume ``notes-data`` (unless ``volume`` is False); its bounded run
    of the helper prints ``output``."""

    def __init__(self, output: str, volume: bool = True):
        self.output, self.runs = output, []

        class Volumes:
            def get(self, name):
                if not volume:
                    raise docker.errors.NotFound("no such volume")

        self.client = type("Client", (), {"volumes": Volumes()})()

    def run(self, image_id, command=None, *, mounts=None):
        self.runs.append((image_id, command, mounts))
        return RunResult(output=self.output, exit_code=0)


MOUNT = {"Name": "notes-data", "Destination": "/data"}


def _look(sandbox: _Sandbox):
    return Runner(sandbox, tool=None, spec=None, helper_image="busybox").look_into(MOUNT)


def test_the_notes_are_read_through_a_bounded_run_with_the_volume_read_only():
    sandbox = _Sandbox(f"a note\n{_LISTED}\n")
    assert _look(sandbox) == (True, "a note\n\n")
    [(image, _, [mount])] = sandbox.runs
    assert image == "busybox"
    assert mount["Source"] == "notes-data" and mount["Target"] == "/data" and mount["ReadOnly"]


def test_an_empty_volume_has_no_note():
    there, notes = _look(_Sandbox(f"cat: can't open '/data/notes/notes.txt'\n{_LISTED}\n"))
    assert there and "a note" not in notes


def test_a_lost_output_is_not_judged_as_an_empty_volume():
    # Sandbox.run already ran it once more when it came back empty.
    assert _look(_Sandbox("")) == (True, None)


def test_a_removed_volume_is_gone():
    assert _look(_Sandbox("", volume=False)) == (False, None)
