"""Grading builds with BuildKit, without an engine: BuildKit's progress read as stages and steps,
its history read as the legacy builder's, its errors turned into the same feedback, and the CLI
run with nothing of the user's docker configuration."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from docklab import buildkit
from docklab.buildkit import BuildKitModel, buildx_command, isolated_cli_env
from docklab.checks import buildkit_build
from docklab.checks.feedback import BuildLab, build_failed, last_lines
from docklab.checks.history import legacy_form
from docklab.checks.sandbox import BuildResult, Limits, Sandbox, legacy_stages


def _vertex(digest, name, inputs=(), **state):
    return {"digest": digest, "name": name, "inputs": list(inputs), **state}


#: A multi-stage build as BuildKit reports it: the final stage FROM scratch has no FROM vertex,
#: its COPY --from builds on the build stage's last step, and the final stage is named first.
MULTI = {"vertexes": [
    _vertex("c", "[stage-1 1/1] COPY --from=build /hello /hello", inputs=["r", "ctx"]),
    _vertex("f", "[build 1/3] FROM docker.io/library/debian:12"),
    _vertex("a", "[build 2/3] COPY hello.c /src/", inputs=["f", "ctx"]),
    _vertex("r", "[build 3/3] RUN gcc -static -o /hello /src/hello.c", inputs=["a"]),
    _vertex("ctx", "[internal] load build context"),
]}


def test_buildkit_stages_put_the_images_own_stage_last():
    model = BuildKitModel()
    model.feed(MULTI)
    assert model.final_stage() == "stage-1"
    assert model.stages() == [
        ("build", ["FROM docker.io/library/debian:12", "COPY hello.c /src/",
                   "RUN gcc -static -o /hello /src/hello.c"]),
        ("stage-1", ["COPY --from=build /hello /hello"])]


def test_a_stage_of_ten_steps_or_more_is_still_read():
    # BuildKit pads the step number to the width of the total: "[ 3/12]", "[build  3/12]".
    model = BuildKitModel()
    model.feed({"vertexes": [_vertex("x", "[ 3/12] RUN true"),
                             _vertex("y", "[build  4/12] RUN false", inputs=["x"])]})
    steps = model.snapshot()["steps"]
    assert [(s["stage"], s["n"], s["instruction"]) for s in steps] == [
        ("", 3, "RUN true"), ("build", 4, "RUN false")]


def test_legacy_steps_make_one_stage_per_from():
    steps = [("FROM debian:12 AS build", "a"), ("RUN gcc", "b"), ("FROM scratch", "c"),
             ("COPY --from=build /hello /hello", "d")]
    assert legacy_stages(steps) == [("build", ["FROM debian:12 AS build", "RUN gcc"]),
                                    ("stage-1", ["FROM scratch",
                                                 "COPY --from=build /hello /hello"])]


@pytest.mark.parametrize(("first", "base"), [
    ("FROM docker.io/library/debian:12", "debian:12"),
    ("FROM docker.io/library/debian:12@sha256:" + "a" * 64, "debian:12"),
    ("FROM registry.example:5000/team/img:1", "registry.example:5000/team/img:1"),
    ("FROM debian:12 AS build", "debian:12"),
    ("COPY --from=build /hello /hello", ""),   # FROM scratch: no FROM step
])
def test_the_base_is_what_the_images_stage_starts_from(first, base):
    assert BuildResult(stages=[("x", ["FROM busybox"]), ("y", [first])]).base == base


@pytest.mark.parametrize(("buildkit_entry", "legacy_entry"), [
    ("ARG DEBIAN_FRONTEND=noninteractive", "/bin/sh -c #(nop)  ARG DEBIAN_FRONTEND=noninteractive"),
    ("RUN |1 DEBIAN_FRONTEND=noninteractive /bin/sh -c apt-get update # buildkit",
     "|1 DEBIAN_FRONTEND=noninteractive /bin/sh -c apt-get update"),
    ("COPY moby.cow /usr/share/cowsay/cows/ # buildkit",
     "/bin/sh -c #(nop)  COPY moby.cow /usr/share/cowsay/cows/"),
    ('ENTRYPOINT ["cowsay" "-f" "moby.cow"]',
     '/bin/sh -c #(nop)  ENTRYPOINT ["cowsay" "-f" "moby.cow"]'),
])
def test_buildkit_history_reads_as_the_legacy_builders(buildkit_entry, legacy_entry):
    assert legacy_form(buildkit_entry) == legacy_entry


@pytest.mark.parametrize("entry", ["/bin/sh -c #(nop)  ARG A=1", "|1 A=1 /bin/sh -c make",
                                   "/bin/sh -c apt-get update", ""])
def test_legacy_history_is_left_as_it_is(entry):
    assert legacy_form(entry) == entry


MOBY = BuildLab(base="debian:12", files=("moby.cow",), packages="cowsay")


def test_buildkit_errors_get_the_same_feedback_as_the_legacy_builders():
    limits = Limits()
    run = BuildResult(builder="buildkit", step_output="E: Unable to locate package cowsay\n",
                      log="#5 [2/3] RUN apt-get install -y cowsay\nE: Unable to locate package",
                      error='process "/bin/sh -c apt-get install -y cowsay" did not complete '
                            "successfully: exit code: 100")
    assert "apt-get could not find cowsay" in build_failed(run, limits, MOBY)
    old = BuildResult(builder="buildkit", step_output="boom\n", log="boom",
                      error="executor failed running [/bin/sh -c false]: exit code: 1")
    assert build_failed(old, limits, MOBY).startswith("A RUN command failed")
    assert last_lines(old) == "boom"
    copy = BuildResult(builder="buildkit", error='failed to compute cache key: failed to '
                       'calculate checksum of ref x::y: "/moby.cow": not found')
    assert build_failed(copy, limits, MOBY).startswith("COPY found no such file")


def test_the_buildx_command_sends_a_tar_context_on_stdin_under_a_cgroup_parent():
    words = buildx_command({"fileobj": object(), "custom_context": True,
                            "buildargs": {"http_proxy": "http://10.0.2.2:3128"},
                            "labels": {"org.docklab.managed": "true"},
                            "cgroup_parent": "/docker/abc", "network_mode": "default"}, "/t/iid")
    assert words[1:] == ["buildx", "build", "--progress=rawjson", "--iidfile", "/t/iid",
                         "--build-arg", "http_proxy=http://10.0.2.2:3128",
                         "--label", "org.docklab.managed=true", "--network", "default",
                         "--cgroup-parent", "/docker/abc", "-"]


def test_the_grading_cli_sees_none_of_the_users_docker_configuration(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".docker" / "cli-plugins").mkdir(parents=True)
    plugin = home / ".docker" / "cli-plugins" / "docker-buildx"
    plugin.write_text("#!/bin/sh\n")
    plugin.chmod(0o755)
    (home / ".docker" / "config.json").write_text('{"auths": {"r.example": {"auth": "c2VjcmV0"}}}')
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DOCKER_CONFIG", raising=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-for-the-cli")
    env = isolated_cli_env("unix:///run/sealed/docker.sock", tmp_path / "cli")
    assert env["DOCKER_HOST"] == "unix:///run/sealed/docker.sock"
    assert env["DOCKER_CONFIG"] == env["HOME"] == str(tmp_path / "cli")
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == ["cli-plugins"]
    assert (tmp_path / "cli" / "cli-plugins" / "docker-buildx").resolve() == plugin.resolve()
    assert "AWS_SECRET_ACCESS_KEY" not in env


class _Adapter:
    socket_path = "/tmp/docklab-sealed-x/engine/docker.sock"


class _Api:
    def __init__(self, base_url):
        self.base_url = base_url

    def get_adapter(self, url):
        return _Adapter()


class _Client:
    def __init__(self, base_url):
        self.api = _Api(base_url)


@pytest.mark.parametrize(("base_url", "address"), [
    ("http+docker://localhost", "unix:///tmp/docklab-sealed-x/engine/docker.sock"),
    ("http://127.0.0.1:2375", "tcp://127.0.0.1:2375"),
    ("https://engine.example:2376", None),   # without DOCKER_CERT_PATH for the CLI
])
def test_the_cli_is_pointed_at_the_judged_engine(base_url, address, monkeypatch):
    monkeypatch.delenv("DOCKER_CERT_PATH", raising=False)
    assert buildkit_build.engine_address(_Client(base_url)) == address


def test_the_builder_is_chosen_by_argument_or_environment(monkeypatch):
    monkeypatch.setenv("DOCKLAB_GRADE_BUILDER", "legacy")
    assert Sandbox(_Client("http://x:1"), "t").chosen_builder() == "legacy"
    with pytest.raises(ValueError, match="builder"):
        Sandbox(_Client("http://x:1"), "t", builder="kaniko")


def test_a_flood_of_step_output_is_counted_and_capped():
    progress = buildkit_build._Progress(cap=100)
    data = base64.b64encode(b"y\n" * 80).decode()
    progress.feed({"vertexes": [_vertex("r", "[2/2] RUN yes", started="t")]})
    progress.feed({"logs": [{"vertex": "r", "stream": 1, "data": data}]})
    assert progress.size == 160 and progress.flooded
    assert progress.tail.startswith("#1 [2/2] RUN yes\ny\n")


def test_buildkit_module_is_where_the_build_view_gets_its_pieces():
    from docklab.widgets import build

    assert build.BuildKitModel is buildkit.BuildKitModel
    assert build.buildx_command is buildkit.buildx_command
    assert Path(buildkit.__file__).name == "buildkit.py"


def test_a_cancelled_step_beside_the_failed_one_does_not_hide_its_error():
    progress = buildkit_build._Progress(cap=1000)
    progress.feed({"vertexes": [_vertex("r", "[build 2/2] RUN gcc x.c", started="t"),
                                _vertex("c", "[stage-1 1/2] RUN sleep 9", started="t")]})
    progress.feed({"logs": [{"vertex": "r", "data": base64.b64encode(b"x.c: error\n").decode()}]})
    progress.feed({"vertexes": [
        _vertex("r", "[build 2/2] RUN gcc x.c", error='process "/bin/sh -c gcc x.c" did not '
                "complete successfully: exit code: 1"),
        _vertex("c", "[stage-1 1/2] RUN sleep 9", error="context canceled")]})
    assert "exit code: 1" in progress.error()
    assert progress.outputs[progress.last_vertex] == "x.c: error\n"


def test_buildkit_clipping_a_steps_output_is_a_flood_at_once():
    # BuildKit passes on at most 200 KiB/s of a step's output, then writes this and drops the
    # rest: the flood would otherwise run on unseen until the time limit.
    progress = buildkit_build._Progress(cap=2 * 1024 * 1024)
    clip = b"y\ny\n\n[output clipped, log limit 200KiB/s reached]\n"
    progress.feed({"logs": [{"vertex": "r", "data": base64.b64encode(clip).decode()}]})
    assert progress.flooded and progress.size < progress.cap
    build = BuildResult(builder="buildkit", flooded=True, log_clipped=progress.clipped)
    assert "printed more than BuildKit passes on ([output clipped, log limit 200KiB/s" in \
        build_failed(build, Limits(), MOBY)


def test_engine_20_10s_buildkit_words_a_missing_file_its_own_way():
    copy = BuildResult(builder="buildkit", error='"/etc/passwd" not found: not found')
    assert build_failed(copy, Limits(), MOBY).startswith("COPY found no such file")


@pytest.mark.parametrize(("dockerfile", "stages"), [
    ("FROM debian:12\nCOPY hello.c /src/\nRUN gcc -o /hello /src/hello.c\n",
     [("", ["FROM debian:12", "COPY hello.c /src/", "RUN gcc -o /hello /src/hello.c"])]),
    # the image's own stage last, as BuildKit names an unnamed stage; scratch has no FROM step
    ("FROM debian:12 AS build\nRUN gcc\nFROM scratch\nCOPY --from=build /hello /hello\n",
     [("build", ["FROM debian:12", "RUN gcc"]), ("stage-1", ["COPY --from=build /hello /hello"])]),
    # a stage the image does not need is not built; an ARG fills a FROM in
    ("ARG BASE=busybox\nFROM debian:12 AS build\nRUN gcc\nFROM $BASE\nCOPY hello /hello\n",
     [("stage-1", ["FROM busybox", "COPY hello /hello"])]),
    # FROM <stage> and a RUN's --mount from= need their stage; a heredoc's lines are no FROM
    (("FROM debian:12 AS Build\nRUN <<EOF\necho hi\nFROM nothing\nEOF\n"
     "FROM build AS test\nRUN --mount=type=cache,target=/c,from=build true\n"
     "FROM debian:12 AS unused\nFROM scratch\nCOPY --from=1 /x /x\n"),
     [("build", ["FROM debian:12", "RUN <<EOF"]),
      ("test", ["RUN --mount=type=cache,target=/c,from=build true"]),
      ("stage-3", ["COPY --from=1 /x /x"])]),
    (("FROM --platform=$BUILDPLATFORM debian:12 AS build\nRUN gcc\n"
     "FROM busybox\nCOPY --from=build /hello /hello\n"),
     [("build", ["FROM debian:12", "RUN gcc"]), ("stage-1", ["FROM busybox",
                                                            "COPY --from=build /hello /hello"])]),
    ("# only a comment\n", []),
])
def test_the_stages_are_read_from_the_dockerfile(dockerfile, stages):
    assert buildkit.dockerfile_stages(dockerfile) == stages
