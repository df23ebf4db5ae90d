"""The online features over HTTP: a JSON vector per entity, read from the online store (Redis).

    GET  /features?features=user_activity:purchases,user_activity:plan&user_id=u1&user_id=u2
    POST /features   {"features": ["user_activity:purchases"], "entities": [{"user_id": "u1"}, ...]}
                     ("entities" may also be columns: {"user_id": ["u1", "u2"]})
    GET  /health     {"online_store": "redis://127.0.0.1:6379/0", "redis_time": "...Z"}

answer `{"at": <lookup time, Redis's clock, ISO 8601 UTC>, "features": [names], "entities":
[{"user_id": "u1", "user_activity:purchases": 2, "user_activity:plan": "free"}, ...]}`, entities in
request order, nulls as null (unknown entity, stale past the view's TTL, never written). Ids are
the caller's (raw user ids); the server pseudonymizes them as `get_online_features` does. Errors are
JSON too, `{"error": "..."}`: 400 for an unknown feature, a missing or unknown key parameter or bad
JSON; 404 for another path; 503, naming the server, when Redis cannot be reached.

The standard library's threaded HTTP server (a thread per connection, keep-alive, Nagle off so a
small answer is not held back): no web framework to install. `python -m ml_platform serve` runs it;
`make dev` starts it beside Redis.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from ml_platform.online_store import OnlineStoreUnavailable, RedisOnlineStore
from ml_platform.training.online import online_vectors
from ml_platform.training.retrieval import feature_views, requested_features

MAX_BODY_BYTES = 1 << 20


class BadRequest(ValueError):
    pass


def _iso(moment) -> str:
    return moment.isoformat() + "Z"


class OnlineFeaturesServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: RedisOnlineStore, views: dict | None = None):
        self.store = store
        self.views = feature_views() if views is None else views
        super().__init__(address, OnlineFeaturesHandler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def lookup(self, features: list[str], entities: dict[str, list]) -> dict:
        if not features:
            raise BadRequest("name the features: features=view:feature,...")
        requested = requested_features(features, self.views)
        key_columns = list(dict.fromkeys(c for view in requested for c in self.views[view].entity_columns))
        unknown = sorted(set(entities) - set(key_columns))
        if unknown:
            raise BadRequest(f"unknown parameter(s) {unknown}: the features asked for are keyed by {key_columns}")
        answer = online_vectors(self.store, entities, features, views=self.views)
        given = [c for c in key_columns if c in entities]
        return {
            "at": _iso(answer.at),
            "features": answer.names,
            "entities": [
                {**{c: entities[c][row] for c in given}, **vector} for row, vector in enumerate(answer.vectors)
            ],
        }


class OnlineFeaturesHandler(BaseHTTPRequestHandler):
    server: OnlineFeaturesServer
    protocol_version = "HTTP/1.1"  # keep-alive: a client's lookups reuse one connection
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        pass  # one line per lookup would drown the console; errors reach the client as JSON

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self, work) -> None:
        try:
            self._send(HTTPStatus.OK, work())
        except OnlineStoreUnavailable as error:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(error)})
        except ValueError as error:  # BadRequest, unknown features, missing keys, bad JSON
            self._send(HTTPStatus.BAD_REQUEST, {"error": str(error)})

    def do_GET(self):  # noqa: N802 - the stdlib's name
        url = urlsplit(self.path)
        if url.path == "/health":
            self._answer(
                lambda: {"online_store": self.server.store.location, "redis_time": _iso(self.server.store.now())}
            )
        elif url.path == "/features":
            self._answer(lambda: self._get_features(url.query))
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no {url.path}: GET /features, POST /features, GET /health"})

    def _get_features(self, query: str) -> dict:
        params = parse_qs(query, keep_blank_values=True)
        features = [name for value in params.pop("features", []) for name in value.split(",") if name]
        return self.server.lookup(features, params)

    def do_POST(self):  # noqa: N802
        url = urlsplit(self.path)
        if url.path != "/features":
            self._send(HTTPStatus.NOT_FOUND, {"error": f"no {url.path}: POST /features"})
            return
        self._answer(self._post_features)

    def _post_features(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise BadRequest(f"body of {length} bytes: at most {MAX_BODY_BYTES}")
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except json.JSONDecodeError as error:
            raise BadRequest(f"the body is not JSON: {error}") from error
        if not isinstance(body, dict) or not isinstance(body.get("features"), list):
            raise BadRequest('the body is {"features": ["view:feature", ...], "entities": [{"<key>": id}, ...]}')
        return self.server.lookup(body["features"], _columns(body.get("entities")))


def _columns(entities) -> dict[str, list]:
    """Entities as columns of ids, from a list of objects or an object of lists."""
    if isinstance(entities, dict) and all(isinstance(v, list) for v in entities.values()):
        return entities
    if isinstance(entities, list) and all(isinstance(e, dict) for e in entities):
        names = list(dict.fromkeys(k for e in entities for k in e))
        return {name: [e.get(name) for e in entities] for name in names}
    raise BadRequest(
        '"entities" is a list of objects ([{"user_id": "u1"}]) or an object of lists ({"user_id": ["u1"]})'
    )


def start_server(store: RedisOnlineStore, host: str = "127.0.0.1", port: int = 0, views: dict | None = None):
    """A running server (its own thread) and that thread: `server.url`; `server.shutdown()` stops it."""
    server = OnlineFeaturesServer((host, port), store, views)
    thread = threading.Thread(target=server.serve_forever, name="online-features", daemon=True)
    thread.start()
    return server, thread
