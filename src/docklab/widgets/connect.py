"""The connect panel of 00-index: enter a DOCKER_HOST (and a certificate folder), test it, use it."""

from __future__ import annotations

import html

import ipywidgets as w

from docklab.engine import engine_address, engine_summary, forget_saved_engine, use_engine
from docklab.errors import DocklabError


class ConnectPanel(w.VBox):
    """Choose the engine for the course: ``ConnectPanel()`` in a cell shows the form."""

    def __init__(self):
        self.host = w.Text(value=engine_address(), description="DOCKER_HOST",
                           placeholder="ssh://me@host  or  tcp://host:2376",
                           layout=w.Layout(width="36em"))
        self.certs = w.Text(description="TLS certs", placeholder="folder with ca.pem, cert.pem, "
                            "key.pem (tcp:// with TLS only)", layout=w.Layout(width="36em"))
        self.use_button = w.Button(description="Test and use", button_style="primary")
        self.forget_button = w.Button(description="Forget saved engine")
        self.result = w.HTML()
        self.use_button.on_click(lambda _: self.try_engine())
        self.forget_button.on_click(lambda _: self.forget())
        super().__init__([self.host, self.certs,
                          w.HBox([self.use_button, self.forget_button]), self.result])

    def try_engine(self) -> bool:
        """Connect to what the form says; on success every notebook uses it from now on."""
        try:
            client = use_engine(self.host.value, cert_path=self.certs.value or None)
        except DocklabError as exc:
            self.result.value = (f"<b style='color:#b00'>✗ {html.escape(exc.message)}</b><br>"
                                 f"{html.escape(exc.hint)}")
            return False
        s = engine_summary(client)
        self.result.value = (f"<b style='color:#070'>✓ Docker Engine {html.escape(str(s['version']))}"
                             f" (API {s['api_version']}) on {html.escape(str(s['os']))}</b><br>"
                             "Saved for the course: restart the kernel of any notebook that was "
                             "already open.")
        return True

    def forget(self) -> None:
        forget_saved_engine()
        self.result.value = "Forgotten: notebooks use DOCKER_HOST or the local socket again."
