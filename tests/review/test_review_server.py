"""The review page's server over HTTP: token, tabs, lock, images, errors as messages;
and ``plankflux review`` on the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from review_helpers import pipeline_like_workspace

from plankflux.errors import PlankfluxError
from plankflux.hitl.review import ReviewSession, review_lock_path
from plankflux.review.server import OTHER_TAB, WRONG_TOKEN, ReviewServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(tiny_campaign, tmp_path):
    campaign, folder = pipeline_like_workspace(tiny_campaign, tmp_path / "ws")
    logged: list[str] = []
    server = ReviewServer(ReviewSession(folder, campaign), log=logged.append)
    server.start_in_thread()
    yield server, folder, logged
    server.shutdown()


def _call(server, path, body=None, token=None):
    base = server.url.split("/?")[0]
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={"X-Plankflux-Token": server.token if token is None else token},
        method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_binds_the_loopback_with_a_token_and_refuses_a_wrong_one(served):
    server, _, logged = served
    assert server.url.startswith("http://127.0.0.1:") and "?token=" in server.url
    status, body = _call(server, "/", token="wrong")
    assert status == 403 and WRONG_TOKEN.encode() in body
    status, body = _call(server, "/api/open", {}, token="")
    assert status == 403 and json.loads(body)["error"] == WRONG_TOKEN
    assert any("wrong or missing token" in line for line in logged)
    status, body = _call(server, "/")
    assert status == 200 and b"plankflux review" in body
    assert _call(server, "/static/review.js", token="")[0] == 200  # no data in it


def test_decide_undo_finish_and_errors_as_messages(served):
    server, folder, _ = served
    status, body = _call(server, "/api/open", {})
    opened = json.loads(body)
    tab = opened["tab"]
    assert status == 200 and opened["mode"] == "verify" and opened["progress"]["decided"] == 0
    page = json.loads(_call(server, "/api/class/aggregate")[1])
    pid = page["items"][0]["particle_id"]
    assert page["items"][0]["votes"] == [] and len(page["references"]) == 6
    assert _call(server, f"/image/{page['items'][0]['index']}")[0] == 200
    assert _call(server, "/image/9999")[0] == 404
    assert _call(server, "/reference/aggregate/0")[0] == 200

    change = {"particle_id": pid, "verdict": "relabelled", "label": "octopus"}
    status, body = _call(server, "/api/decide", {"tab": tab, "changes": [change]})
    assert status == 400 and "unknown class 'octopus'" in json.loads(body)["error"]
    status, body = _call(server, "/api/decide", {"tab": tab, "changes": "all"})
    assert status == 400 and "changes must be a list" in json.loads(body)["error"]
    status, body = _call(server, "/api/class/octopus")
    assert status == 400 and "unknown class 'octopus'" in json.loads(body)["error"]

    change["label"] = "noise"
    status, body = _call(server, "/api/decide", {"tab": tab, "changes": [change], "seconds": 2})
    assert status == 200 and json.loads(body)["decisions"][pid]["label"] == "noise"
    status, body = _call(server, "/api/finish", {"tab": tab})
    assert status == 400 and "have no decision yet" in json.loads(body)["error"]
    status, body = _call(server, "/api/undo", {"tab": tab})
    assert json.loads(body)["undone"] == [pid] and json.loads(body)["class"] == "aggregate"


def test_a_second_tab_becomes_the_writer(served):
    server, folder, _ = served
    first = json.loads(_call(server, "/api/open", {})[1])["tab"]
    second = json.loads(_call(server, "/api/open", {})[1])["tab"]
    pid = json.loads(_call(server, "/api/class/noise")[1])["items"][0]["particle_id"]
    change = [{"particle_id": pid, "verdict": "confirmed"}]
    status, body = _call(server, "/api/decide", {"tab": first, "changes": change})
    assert status == 409 and json.loads(body) == {"error": OTHER_TAB, "other_tab": True}
    status, _ = _call(server, "/api/decide", {"tab": second, "changes": change})
    assert status == 200


def test_a_second_server_on_the_same_folder_is_refused(served, tiny_campaign):
    server, folder, _ = served
    session = ReviewSession(folder, server.review.session.campaign)
    with pytest.raises(PlankfluxError, match="already being reviewed by process"):
        ReviewServer(session)
    server.shutdown()
    assert not review_lock_path(folder).exists()
    review_lock_path(folder).write_text(json.dumps({"pid": 2**22 + 12345}))  # a dead one
    again = ReviewServer(session)
    again.shutdown()


def _plankflux(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    return subprocess.Popen(
        [sys.executable, "-m", "plankflux.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


def test_the_command_prints_the_address_and_stops_cleanly(tiny_campaign, tmp_path):
    campaign, folder = pipeline_like_workspace(tiny_campaign, tmp_path / "ws")
    process = _plankflux("review", str(folder), "--campaign", str(tiny_campaign))
    try:
        lines = [process.stdout.readline() for _ in range(3)]
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert "(verify round, 38 images in 14 classes, 0 decided)" in lines[0]
    assert lines[1].strip().startswith("open http://127.0.0.1:")
    assert f"Finish writes {folder.parent / 'verified.csv'}" in lines[2]  # the workspace's
    assert process.returncode == 0 and "stopped; decisions saved (38 image(s) left" in out
    assert not review_lock_path(folder).exists()


def test_the_command_reports_bad_input_in_one_line(tiny_campaign, tmp_path):
    campaign, folder = pipeline_like_workspace(tiny_campaign, tmp_path / "ws")
    manifest = folder / "manifest.csv"
    manifest.write_text(manifest.read_text().replace("RR02_000001,", "ZZ_404,", 1))
    process = _plankflux("review", str(folder), "--campaign", str(tiny_campaign))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert err.startswith("plankflux review: cannot review proposal folder")
    assert "particle_id 'ZZ_404' is not in the campaign" in err


def test_update_folder_moves_and_deletes_as_decided_only_when_asked(tiny_campaign, tmp_path):
    campaign, folder = pipeline_like_workspace(tiny_campaign, tmp_path / "ws")
    session = ReviewSession(folder, campaign, out=tmp_path / "page.csv")
    first, second, *rest = session.items
    session.decide([(first.particle_id, "relabelled", "bubble"), (second.particle_id, "wrong", "")])
    session.decide([(item.particle_id, "confirmed", "") for item in rest])
    session.finish()
    process = _plankflux("review", str(folder), "--campaign", str(tiny_campaign), "--update-folder")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert f"updated {folder}: kept {len(rest)}, moved 1, deleted 1" in out
    assert (folder / "bubble" / Path(first.file).name).is_file()
    assert not (folder / second.file).exists() and not (folder / first.file).exists()
    from plankflux.hitl.ingest import ingest_verification

    ingest_verification(folder, campaign.classes, tmp_path / "folder.csv")
    assert (tmp_path / "page.csv").read_bytes() == (tmp_path / "folder.csv").read_bytes()
