"""A local HTTP server replaying recorded Discourse responses, scripted per request."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).parent / "fixtures" / "discourse"


class ScriptedApi:
    """script[(path, query-key)] = [(status, fixture file, headers), ...]; the last response repeats."""

    def __init__(self):
        self.script: dict[tuple[str, str], list] = {}
        self.log: list[tuple[str, str, int, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                key = (url.path, ",".join(f"{k}={v[0]}" for k, v in sorted(query.items()) if k != "show_emails"))
                queue = api.script.get(key)
                if not queue:
                    status, name, headers = 404, None, {}
                else:
                    status, name, headers = queue.pop(0) if len(queue) > 1 else queue[0]
                body = (FIXTURES / name).read_bytes() if name else b"{}"
                api.log.append((url.path, key[1], status, self.headers.get("Api-Key", "")))
                self.send_response(status)
                ctype = "application/json" if name and name.endswith(".json") else "text/html"
                self.send_header("Content-Type", ctype)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def on(self, path: str, query: str, *responses):
        self.script[(path, query)] = list(responses)
