"""The security lab's service: greets every visitor on port 8080 and counts the visits.

The count is kept in /tmp/visits, so the service must be able to write there (and only there).
"""

import http.server
import os
import sys

COUNTER = "/tmp/visits"
PORT = 8080


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # the name http.server calls for GET
        try:
            with open(COUNTER, "a") as counter:
                counter.write(".")
            body, status = f"hello from docklab: visit {os.path.getsize(COUNTER)}\n", 200
        except OSError as exc:
            body, status = f"cannot write {COUNTER}: {exc.strerror}\n", 500
            print(body, end="", file=sys.stderr, flush=True)
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    print(f"listening on port {PORT} as uid {os.getuid()}", flush=True)
    http.server.ThreadingHTTPServer(("", PORT), Handler).serve_forever()
