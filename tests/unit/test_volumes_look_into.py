"""The volumes lab's look into a volume after its containers are gone: a helper run whose output
the engine lost is run again, not taken for "the note is not in it" (no engine: fakes)."""

from __future__ import annotations

import docker.errors

from docklab.checks.volumes import _LISTED, Runner


class _Helper:
    def __init__(self, output: bytes):
        self.id, self.output = "helper", output

    def wait(self, timeout):
        return {"StatusCode": 0}

    def logs(self, tail):
        return self.output


class _Sandbox:
    """Its engine has the volume ``notes-data``; each helper run prints the next of ``outputs``."""

    def __init__(self, outputs: list[bytes], volume: bool = True):
        self.outputs, self.runs, self.removed = list(outputs), 0, []
        sandbox = self

        class Volumes:
            def get(self, name):
                if not volume:
                    raise docker.errors.NotFound("no such volume")

        class Containers:
            def run(self, *args, **kwargs):
                sandbox.runs += 1
                return _Helper(sandbox.outputs.pop(0))

        self.client = type("Client", (), {"volumes": Volumes(), "containers": Containers()})()

    def labels(self, kind):
        return {}

    def container_limits(self):
        return {}

    def remove_container(self, container_id):
        self.removed.append(container_id)


MOUNT = {"Name": "notes-data", "Destination": "/data"}
READ = f"a note\n{_LISTED}\n".encode()


def _look(sandbox: _Sandbox):
    return Runner(sandbox, tool=None, spec=None, helper_image="busybox").look_into(MOUNT)


def test_a_lost_output_is_read_again():
    sandbox = _Sandbox([b"", READ])
    assert _look(sandbox) == (True, "a note\n\n")
    assert sandbox.runs == 2 and sandbox.removed == ["helper", "helper"]


def test_an_empty_volume_is_read_once_and_has_no_note():
    sandbox = _Sandbox([f"cat: can't open '/data/notes.txt'\n{_LISTED}\n".encode()])
    there, notes = _look(sandbox)
    assert there and "a note" not in notes and sandbox.runs == 1


def test_a_volume_no_helper_could_read_is_not_judged_as_empty():
    sandbox = _Sandbox([b"", b"", b""])
    assert _look(sandbox) == (True, None)
    assert sandbox.runs == 3


def test_a_removed_volume_is_gone():
    assert _look(_Sandbox([], volume=False)) == (False, None)
