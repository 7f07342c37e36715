"""``plankflux review`` serves the README demo's proposals (the synthetic demo campaign,
K = 1000 as in Paper A): the page, a class of hundreds of images
with each member's vote, and an image, through the real command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from review_helpers import pipeline_like_workspace

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str, token: str, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers={"X-Plankflux-Token": token})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


@pytest.mark.slow
def test_review_serves_the_demo_proposals(demo_campaign, tmp_path):
    campaign, folder = pipeline_like_workspace(demo_campaign, tmp_path / "logs/pipeline/RR", 1000)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    process = subprocess.Popen(
        [sys.executable, "-m", "plankflux.cli.main", "review", str(folder),
         "--campaign", str(demo_campaign)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        head, address = process.stdout.readline(), process.stdout.readline()
        url = address.split("open ", 1)[1].strip()
        base, token = url.split("/?token=")
        status, page = _get(url, token)
        assert status == 200 and b"review.js" in page
        opened = json.loads(_get(f"{base}/api/open", token, b"{}")[1])
        total = opened["progress"]["total"]
        assert f"({opened['mode']} round, {total} images" in head and total > 500
        biggest = max(opened["progress"]["classes"].items(), key=lambda kv: kv[1]["total"])[0]
        shown = json.loads(_get(f"{base}/api/class/{biggest}", token)[1])
        assert len(shown["items"]) == opened["progress"]["classes"][biggest]["total"] > 100
        scores = [item["score"] for item in shown["items"]]
        assert scores == sorted(scores, reverse=True)
        assert all(len(item["votes"]) == 2 for item in shown["items"])
        status, image = _get(f"{base}/image/{shown['items'][0]['index']}", token)
        assert status == 200 and image.startswith(b"\x89PNG")
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0
