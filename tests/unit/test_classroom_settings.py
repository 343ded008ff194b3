"""The classroom's settings and the learner image's build context, without an engine."""

from docklab.classroom.engine import docker_host, engine_names, socket_volume
from docklab.classroom.image import context_files, project_root
from docklab.classroom.settings import CLASSROOM, Settings


def test_settings_come_from_the_environment_with_the_learners_prefix(monkeypatch):
    monkeypatch.setenv("DOCKLAB_PREFIX", "t1")
    monkeypatch.setenv("DOCKLAB_CLASSROOM_PORT", "8100")
    monkeypatch.setenv("DOCKLAB_CLASSROOM_IMAGES", "busybox,nginx")
    monkeypatch.setenv("DOCKLAB_CLASSROOM_ENGINE", "rootless")
    monkeypatch.setenv("DOCKLAB_CLASSROOM_ENGINE_MEMORY", "3g")
    settings = Settings.from_env()
    assert settings.name == "t1-docklab-classroom"
    assert (settings.port, settings.hub_port, settings.proxy_api_port) == (8100, 8101, 8102)
    assert settings.images == ("busybox", "nginx")
    assert settings.engine_kind == "rootless" and settings.engine.memory == "3g"
    assert settings.labels("ada")[CLASSROOM] == "t1-docklab-classroom"
    assert settings.labels("ada")["org.docklab.learner"] == "ada"


def test_each_engine_kind_has_its_own_address_and_names():
    assert docker_host("dind") == "tcp://127.0.0.1:2375"
    assert docker_host("rootless").startswith("unix://")
    assert engine_names("room-ada") == ("room-ada-engine", "room-ada-engine-data")
    assert socket_volume("room-ada") == "room-ada-engine-socket"


def test_the_learner_images_context_holds_the_course_but_no_solutions_nor_lab_sources():
    files, recipe = context_files(project_root(), "jupyterhub==6.1.1\n")
    assert "Dockerfile" in files and files["constraints.txt"] == b"jupyterhub==6.1.1\n"
    assert any(name.startswith("course/notebooks/") for name in files)
    assert any(name.startswith("course/labs/") for name in files)
    assert any(name.startswith("project/src/docklab/") for name in files)
    assert not [name for name in files if "solutions/" in name or "grader/" in name]
    # The recipe names what goes in: other pins, another recipe.
    assert context_files(project_root(), "jupyterhub==6.0.0\n")[1] != recipe
