"""Talking to a classroom from outside: the hub's REST API, and code run in a learner's kernel.

What a learner's browser does, without a browser: log in (``POST /hub/api/users/NAME/tokens``
with the learner's name and password), start the server, start a kernel through the hub's proxy
(``/user/NAME/api/kernels``) and run code in it over the kernel's websocket (Jupyter's messaging
protocol), open and save a notebook (``/user/NAME/api/contents``), press the Assignments tab's
buttons (nbgrader's ``/user/NAME/assignments/fetch|submit|fetch_feedback``). The tests and
``bench/bench_classroom.py`` use it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

import requests
import websocket

from docklab.errors import DocklabError


class ClassroomError(DocklabError):
    """The hub or a learner's server answered something unexpected."""


def _check(response: requests.Response, what: str) -> requests.Response:
    if response.status_code >= 400:
        raise ClassroomError(f"{what}: HTTP {response.status_code}", response.text[:500])
    return response


def _request(token: str, method: str, url: str, **kwargs) -> requests.Response:
    """One request with a hub token (the hub's API or a server behind its proxy), 60 s at most
    unless ``timeout`` says otherwise."""
    return requests.request(method, url, headers={"Authorization": f"token {token}"},
                            timeout=kwargs.pop("timeout", 60), **kwargs)


@dataclass
class Hub:
    """The hub at ``url`` (e.g. http://127.0.0.1:8000), with an API token."""

    url: str
    token: str

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return _request(self.token, method, f"{self.url}/hub/api{path}", **kwargs)

    def add_learners(self, *names: str) -> None:
        """``POST /hub/api/users``: these may log in (names already there are kept)."""
        missing = [n for n in names if self.api("GET", f"/users/{n}").status_code == 404]
        if missing:
            _check(self.api("POST", "/users", json={"usernames": missing}), "adding learners")

    def users(self) -> list[dict]:
        return _check(self.api("GET", "/users"), "listing users").json()

    def login(self, name: str, password: str) -> Learner:
        """Log in as a learner would, with a name and password: a token of that learner."""
        response = requests.post(
            f"{self.url}/hub/api/users/{name}/tokens", timeout=60,
            json={"auth": {"username": name, "password": password}, "note": "docklab",
                  "expires_in": 24 * 3600})
        _check(response, f"logging in as {name}")
        return Learner(self.url, name, response.json()["token"])


@dataclass
class Learner:
    """A logged-in learner: their server, reached through the hub's proxy."""

    url: str
    name: str
    token: str

    def _api(self, method: str, path: str, **kwargs) -> requests.Response:
        return _request(self.token, method, f"{self.url}{path}", **kwargs)

    def start_server(self) -> None:
        """``POST /hub/api/users/NAME/server`` (202: starting, 201: started, 400: running)."""
        response = self._api("POST", f"/hub/api/users/{self.name}/server")
        if response.status_code not in (201, 202, 400):
            _check(response, f"starting {self.name}'s server")

    def server_ready(self) -> bool:
        info = _check(self._api("GET", f"/hub/api/users/{self.name}"), self.name).json()
        server = (info.get("servers") or {}).get("")
        return bool(server and server.get("ready"))

    def wait_until_ready(self, timeout: float = 300) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.server_ready():
                return time.monotonic() - started
            time.sleep(0.25)
        raise ClassroomError(f"{self.name}'s server did not start within {timeout:.0f} s",
                             "`docklab classroom status` and the hub's log say why.")

    def stop_server(self) -> None:
        response = self._api("DELETE", f"/hub/api/users/{self.name}/server")
        if response.status_code not in (202, 204, 400):
            _check(response, f"stopping {self.name}'s server")

    def kernel(self, path: str | None = None) -> Kernel:
        """A new Python kernel in the learner's server (close it, or use ``with``), working in the
        folder ``path`` (relative to the course folder) as a notebook there would."""
        model = {"name": "python3"} | ({"path": path} if path else {})
        response = _check(self._api("POST", f"/user/{self.name}/api/kernels", json=model),
                          f"{self.name}: starting a kernel")
        return Kernel(self, response.json()["id"])

    def contents(self, path: str) -> dict:
        """``GET /user/NAME/api/contents/PATH``: a notebook (as JSON), a file or a folder's list."""
        return _check(self._api("GET", f"/user/{self.name}/api/contents/{path}"),
                      f"{self.name}: opening {path}").json()

    def save_notebook(self, path: str, notebook: dict) -> None:
        """What JupyterLab's save does: ``PUT /user/NAME/api/contents/PATH``."""
        _check(self._api("PUT", f"/user/{self.name}/api/contents/{path}",
                         json={"type": "notebook", "format": "json", "content": notebook}),
               f"{self.name}: saving {path}")

    def assignment(self, action: str, lab: str, course: str = "docklab") -> list[dict]:
        """A button of JupyterLab's Assignments tab: ``fetch``, ``submit`` or ``fetch_feedback``
        of ``lab`` (nbgrader's server extension); returns the assignments the tab then lists.
        (nbgrader answers a failed fetch with the list all the same: look for the lab in it.)"""
        response = _check(self._api("POST", f"/user/{self.name}/assignments/{action}",
                                    params={"course_id": course, "assignment_id": lab},
                                    timeout=120), f"{self.name}: {action} {lab}")
        answer = response.json()
        if not answer.get("success"):
            raise ClassroomError(f"{self.name}: {action} {lab} failed",
                                 str(answer.get("value"))[-1500:])
        return answer["value"]


class Kernel:
    """One kernel of a learner's server; :meth:`run` executes a cell in it."""

    def __init__(self, learner: Learner, kernel_id: str):
        self.learner, self.id = learner, kernel_id
        ws_url = learner.url.replace("http", "ws", 1)
        self._ws = websocket.create_connection(
            f"{ws_url}/user/{learner.name}/api/kernels/{kernel_id}/channels",
            header=[f"Authorization: token {learner.token}"], timeout=60)
        self._session = uuid.uuid4().hex

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, code: str, timeout: float = 120) -> str:
        """Run ``code`` as one cell; returns what it printed. An error in it raises
        :class:`ClassroomError` carrying the traceback's last line."""
        msg_id = uuid.uuid4().hex
        self._ws.send(json.dumps({
            "header": {"msg_id": msg_id, "username": self.learner.name,
                       "session": self._session, "msg_type": "execute_request",
                       "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        output: list[str] = []
        error: dict | None = None
        replied = idle = False
        deadline = time.monotonic() + timeout
        while not (replied and idle):
            self._ws.settimeout(max(1.0, deadline - time.monotonic()))
            if time.monotonic() > deadline:
                raise ClassroomError(f"{self.learner.name}: the cell ran over {timeout:.0f} s",
                                     "".join(output)[-500:])
            message = json.loads(self._ws.recv())
            if (message.get("parent_header") or {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                output.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                output.append(content.get("data", {}).get("text/plain", "") + "\n")
            elif kind == "error":
                error = content
            elif kind == "status" and content.get("execution_state") == "idle":
                idle = True
            elif kind == "execute_reply":
                replied = True
        if error is not None:
            raise ClassroomError(f"{self.learner.name}: {error['ename']}: {error['evalue']}",
                                 "".join(output)[-1000:])
        return "".join(output)

    def close(self) -> None:
        try:
            self._ws.close()
        finally:
            self.learner._api("DELETE", f"/user/{self.learner.name}/api/kernels/{self.id}")
