"""Reads an offline W&B run file (``run-<id>.wandb``) for the tests.

The file is a LevelDB-style log (wandb's ``datastore``): a 7-byte header (``:W&B``,
magic, version), then 32 KiB blocks of records, each with a 7-byte header (CRC32,
length, type: 1 full, 2 first, 3 middle, 4 last) and a protobuf ``Record``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

_BLOCK = 32768
_HEADER = 7


def records(path: Path) -> list[pb.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"not a W&B run file: {path}"
    out, pending, pos = [], b"", _HEADER
    while pos + _HEADER <= len(data):
        left_in_block = _BLOCK - pos % _BLOCK
        if left_in_block < _HEADER:  # zero padding at the end of a block
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 0 and length == 0:
            pos += _BLOCK - pos % _BLOCK if pos % _BLOCK else 0
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
            pending = b""
    return out


def read_run(path: Path) -> dict:
    """``{"id", "group", "name", "tags", "metrics": {key: [values]}, "config": {key: value}}``."""
    run: dict = {"metrics": {}, "config": {}}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(
                id=record.run.run_id,
                group=record.run.run_group,
                name=record.run.display_name,
                tags=list(record.run.tags),
            )
        elif kind == "history":
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                run["metrics"].setdefault(key, []).append(json.loads(item.value_json))
        elif kind == "config":
            for item in record.config.update:
                key = item.key or "/".join(item.nested_key)
                run["config"][key] = json.loads(item.value_json)
    return run


def offline_runs(folder: Path) -> list[dict]:
    """Every offline run below ``folder``, in path order."""
    return [read_run(p) for p in sorted(Path(folder).glob("**/offline-run-*/run-*.wandb"))]
