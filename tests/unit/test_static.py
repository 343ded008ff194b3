from docklab import static

DOCKERFILE = """FROM debian:12
RUN apt-get update
RUN apt-get install cowsay
ENTRYPOINT ['cowsay', '-f', 'moby.cow']
CMD ["Whale hello there"]
"""


def test_instructions_tell_exec_shell_and_broken_json_forms_apart():
    rows = static.instructions(DOCKERFILE)
    assert [r["instruction"] for r in rows] == ["FROM", "RUN", "RUN", "ENTRYPOINT", "CMD"]
    assert rows[0]["value"] == "debian:12"
    forms = {r["instruction"]: r["form"] for r in rows if "form" in r}
    assert forms == {"RUN": "shell", "ENTRYPOINT": "broken-json", "CMD": "exec"}


def test_command_form():
    assert static.command_form('["a", "b"]') == "exec"
    assert static.command_form("a b") == "shell"
    assert static.command_form("['a']") == "broken-json"
    assert static.command_form('["a", 1]') == "broken-json"


def test_hadolint_runs_and_reports_real_findings():
    codes = {f.code for f in static.lint(DOCKERFILE)}
    assert "DL3025" in codes  # JSON notation for ENTRYPOINT
    assert "DL3014" in codes  # apt-get install without -y
    assert static.lint('FROM debian:12\nCMD ["bash"]\n') == []
