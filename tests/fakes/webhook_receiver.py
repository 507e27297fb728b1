"""A webhook receiver on 127.0.0.1 (a Slack incoming webhook, for the tests): answers each POST with the next scripted
status, then 200, and keeps the JSON bodies it accepted. Its URL carries ``test_secrets.WEBHOOK_TOKEN``, as a real
webhook's carries its token, so the secret scan fails a test that lets the URL reach a log, an output or a file."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.fakes.test_secrets import WEBHOOK_TOKEN


class WebhookReceiver:
    def __init__(self) -> None:
        self.script: list[int] = []
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                status = receiver.script.pop(0) if receiver.script else 200
                if status == 200:
                    receiver.bodies.append(body)
                page = f"error on {self.path}".encode()  # a careless receiver quotes the URL
                self.send_response(status)
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{WEBHOOK_TOKEN}"

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
