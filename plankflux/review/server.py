"""``plankflux review``'s local web page: a Bottle app over one :class:`ReviewSession`.

Everything is served from the package (``plankflux/review/static/``: plain HTML, CSS
and JavaScript, no build step, no CDN), so the page works offline. Every request but
the static files needs the session's random token (``?token=`` in the address, or the
``X-Plankflux-Token`` header); a wrong one gets a page saying so, and the terminal logs
it. The server binds 127.0.0.1 unless told otherwise.

One tab writes at a time: opening the page (``POST /api/open``) makes that tab the
writer; an older tab's next change is refused with a message to reload it. A second
``plankflux review`` on the same folder is refused by a lock file beside the folder.
Each decision is saved by the session before the answer goes back.

Routes: ``GET /`` (the page), ``GET /static/<file>``, ``POST /api/open``,
``GET /api/class/<name>``, ``POST /api/decide``, ``POST /api/undo``,
``POST /api/finish``, ``GET /image/<index>``, ``GET /reference/<class>/<n>``.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import bottle

from plankflux.errors import PlankfluxError
from plankflux.hitl.review import ReviewSession, review_lock_path
from plankflux.layout import REVIEW_VERDICTS

STATIC_DIR = Path(__file__).resolve().parent / "static"
TOKEN_HEADER = "X-Plankflux-Token"
WRONG_TOKEN = (
    "Wrong or missing token. Open the address that `plankflux review` printed in its "
    "terminal (it ends with ?token=...)."
)
OTHER_TAB = (
    "This proposal folder was opened in another tab or window, which now records the "
    "decisions. Reload this tab to continue here (nothing is lost)."
)


class ReviewApp:
    """The routes, the writer tab and a lock around the session (one request at a time)."""

    def __init__(
        self,
        session: ReviewSession,
        token: str,
        page_size: int = 24,
        log: Callable[[str], None] | None = None,
    ):
        self.session = session
        self.token = token
        self.page_size = page_size
        self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
        self.tab: str | None = None
        self.lock = threading.Lock()
        self.app = bottle.Bottle()
        self._routes()

    # ------------------------------------------------------------------ plumbing
    def _authorised(self) -> bool:
        given = bottle.request.query.get("token") or bottle.request.get_header(TOKEN_HEADER, "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _refuse(self, api: bool):
        self.log(
            f"plankflux review: refused {bottle.request.method} {bottle.request.path} "
            f"from {bottle.request.remote_addr}: wrong or missing token"
        )
        if api:
            return self._json({"error": WRONG_TOKEN}, 403)
        bottle.response.status = 403
        bottle.response.content_type = "text/html; charset=utf-8"
        return (
            "<!doctype html><meta charset=utf-8><title>plankflux review: wrong token</title>"
            f"<p id=error style='font:16px sans-serif;color:#a00'>{WRONG_TOKEN}</p>"
        )

    @staticmethod
    def _json(payload: dict, status: int = 200) -> str:
        bottle.response.status = status
        bottle.response.content_type = "application/json"
        bottle.response.set_header("Cache-Control", "no-store")
        return json.dumps(payload)

    def _body(self) -> dict:
        try:
            body = json.loads(bottle.request.body.read() or b"{}")
        except ValueError:
            raise PlankfluxError("the request is not JSON") from None
        if not isinstance(body, dict):
            raise PlankfluxError("the request is not a JSON object")
        return body

    def _api(self, handler: Callable[..., dict], write: bool = False) -> Callable[..., str]:
        """Token check, JSON in and out, one request at a time, errors as messages."""

        def wrapped(**kwargs) -> str:
            if not self._authorised():
                return self._refuse(api=True)
            with self.lock:
                try:
                    body = self._body() if bottle.request.method == "POST" else {}
                    if write and body.get("tab") != self.tab:
                        return self._json({"error": OTHER_TAB, "other_tab": True}, 409)
                    return self._json(handler(body, **kwargs))
                except (PlankfluxError, OSError) as err:
                    self.log(f"plankflux review: {err}")
                    return self._json({"error": str(err)}, 400)

        return wrapped

    # -------------------------------------------------------------------- routes
    def _routes(self) -> None:
        app = self.app
        app.route("/", "GET", self.index)
        app.route("/static/<name>", "GET", self.static)
        app.route("/api/open", "POST", self._api(self.open))
        app.route("/api/class/<name>", "GET", self._api(self.class_page))
        app.route("/api/decide", "POST", self._api(self.decide, write=True))
        app.route("/api/undo", "POST", self._api(self.undo, write=True))
        app.route("/api/finish", "POST", self._api(self.finish, write=True))
        app.route("/image/<index:int>", "GET", self.image)
        app.route("/reference/<name>/<n:int>", "GET", self.reference)

    def index(self):
        if not self._authorised():
            return self._refuse(api=False)
        return bottle.static_file("index.html", root=str(STATIC_DIR))

    def static(self, name: str):
        return bottle.static_file(name, root=str(STATIC_DIR))

    def _file(self, path: Path | None, what: str):
        if not self._authorised():
            return self._refuse(api=False)
        if path is None or not path.is_file():
            bottle.response.status = 404
            return f"{what} not found"
        return bottle.static_file(path.name, root=str(path.parent))

    def image(self, index: int):
        items = self.session.items
        item = items[index] if 0 <= index < len(items) else None
        return self._file(self.session.image_path(item) if item else None, "image")

    def reference(self, name: str, n: int):
        refs = self.session.references.get(name, [])
        return self._file(refs[n][1] if 0 <= n < len(refs) else None, "reference image")

    # ----------------------------------------------------------------------- API
    def _status(self) -> dict:
        session = self.session
        finished = session.finished
        return {
            "progress": session.progress(),
            "finished": finished,
            "can_undo": bool(session.history),
        }

    def open(self, body: dict) -> dict:
        """A tab opens the page: it becomes the writer."""
        if self.tab is not None:
            self.log("plankflux review: the page was opened in another tab; that one now records")
        self.tab = secrets.token_hex(8)
        session = self.session
        vanished = session.vanished()
        return {
            "tab": self.tab,
            "proposal_dir": str(session.proposal_dir),
            "mode": session.mode,
            "out": str(session.out),
            "classes": session.classes,
            "page_size": self.page_size,
            "verdicts": list(REVIEW_VERDICTS),
            "vanished": [item.file for item in vanished],
            "has_votes": bool(session.votes),
            **self._status(),
        }

    def _item(self, item) -> dict:
        session = self.session
        return {
            "index": item.index,
            "particle_id": item.particle_id,
            "score": item.score,
            "rank": item.rank,
            "file": item.file,
            "votes": session.votes.get(item.particle_id, []),
            "decision": session.decisions.get(item.particle_id),
            "missing": session.image_path(item) is None,
            "vanished": not (session.proposal_dir / item.file).is_file(),
        }

    def class_page(self, body: dict, name: str) -> dict:
        items = self.session.class_items(name)
        refs = self.session.references.get(name, [])
        return {
            "class": name,
            "items": [self._item(item) for item in items],
            "references": [{"n": n, "particle_id": pid} for n, (pid, _) in enumerate(refs)],
            **self._status(),
        }

    def _decisions(self, pids) -> dict:
        return {pid: self.session.decisions.get(pid) for pid in pids}

    def decide(self, body: dict) -> dict:
        changes = body.get("changes")
        if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
            raise PlankfluxError("changes must be a list of {particle_id, verdict, label}")
        triples = [
            (str(c.get("particle_id", "")), str(c.get("verdict", "")), str(c.get("label") or ""))
            for c in changes
        ]
        self.session.decide(triples, body.get("seconds", 0.0))
        return {"decisions": self._decisions(t[0] for t in triples), **self._status()}

    def undo(self, body: dict) -> dict:
        undone = self.session.undo()
        label = self.session.by_id[undone[0]].proposed_label if undone else None
        return {
            "undone": undone,
            "class": label,
            "decisions": self._decisions(undone),
            **self._status(),
        }

    def finish(self, body: dict) -> dict:
        verified = self.session.finish()
        counts = verified["action"].value_counts().to_dict()
        self.log(
            f"plankflux review: wrote {self.session.out}: {len(verified)} particles; "
            + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        )
        return {"out": str(self.session.out), "counts": counts, **self._status()}


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        pass


class ReviewServer:
    """A started server: ``url`` (with the token), ``serve_forever()``, ``shutdown()``.

    Takes the folder's lock file on start (refusing when another live process holds it)
    and frees it on :meth:`shutdown`.
    """

    def __init__(
        self,
        session: ReviewSession,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str | None = None,
        page_size: int = 24,
        log: Callable[[str], None] | None = None,
    ):
        self.token = token or secrets.token_urlsafe(16)
        self.lock_path = review_lock_path(session.proposal_dir)
        _take_lock(self.lock_path)
        try:
            self.review = ReviewApp(session, self.token, page_size, log)
            self.httpd = make_server(
                host, port, self.review.app, server_class=_ThreadingServer,
                handler_class=_QuietHandler,
            )  # fmt: skip
        except BaseException:
            self.lock_path.unlink(missing_ok=True)
            raise
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
        shown = f"[{shown}]" if ":" in shown else shown
        self.url = f"http://{shown}:{self.httpd.server_port}/?token={self.token}"
        self.lock_path.write_text(json.dumps({"pid": os.getpid(), "url": self.url}))

        self._thread: threading.Thread | None = None
        self._closed = False

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (then call :meth:`shutdown`)."""
        self.httpd.serve_forever(poll_interval=0.2)

    def start_in_thread(self) -> threading.Thread:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self._thread

    def shutdown(self) -> None:
        """Stop serving, close the socket and free the lock (again: nothing)."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:  # BaseServer.shutdown waits for a serving loop
            self.httpd.shutdown()
            self._thread.join()
        self.httpd.server_close()
        self.lock_path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _take_lock(path: Path) -> None:
    """Create the lock file; refuse when a live process holds it, replace a stale one."""
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                held = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                held = {}
            pid = held.get("pid")
            if isinstance(pid, int) and _alive(pid):
                raise PlankfluxError(
                    f"this proposal folder is already being reviewed by process {pid} at "
                    f"{held.get('url', '?')}: use that page, or stop that process first "
                    f"(lock file {path})"
                ) from None
            path.unlink(missing_ok=True)  # left by a process that is gone
            continue
        with os.fdopen(fd, "w") as handle:
            json.dump({"pid": os.getpid()}, handle)
        return
    raise PlankfluxError(f"cannot take the lock file {path}")
