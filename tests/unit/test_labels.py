import pytest

from docklab import labels


def test_labels_for_carries_managed_session_learner_lesson(monkeypatch):
    monkeypatch.setenv("DOCKLAB_LEARNER", "ada")
    got = labels.labels_for("02-running")
    assert got == {
        "org.docklab.managed": "true",
        "org.docklab.session": labels.session_id(),
        "org.docklab.learner": "ada",
        "org.docklab.lesson": "02-running",
    }


def test_user_labels_may_not_use_the_docklab_namespace():
    with pytest.raises(ValueError):
        labels.labels_for("x", **{"org.docklab.managed": "false"})


def test_extra_labels_are_kept():
    assert labels.labels_for("x", app="web")["app"] == "web"


def test_names_get_the_learner_prefix_only_when_one_is_set(monkeypatch):
    monkeypatch.delenv("DOCKLAB_PREFIX", raising=False)
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    assert labels.course_name("web") == "web"
    monkeypatch.setenv("JUPYTERHUB_USER", "grace h")
    assert labels.course_name("web") == "grace-h-web"
    monkeypatch.setenv("DOCKLAB_PREFIX", "room1")
    assert labels.course_name("web") == "room1-web"


def test_filters_always_require_the_managed_label():
    assert labels.label_filters() == ["org.docklab.managed=true"]
    assert labels.label_filters(lesson="l", learner="a", session="s") == [
        "org.docklab.managed=true", "org.docklab.lesson=l",
        "org.docklab.learner=a", "org.docklab.session=s"]
