"""Read the metrics and the run record (name, group) an offline W&B run wrote to its `run-*.wandb` file.

The file is a LevelDB-style log (a 7-byte header ':W&B' + magic 0xBEE1 + version, then 32 KiB
blocks of records: crc32, little-endian length, type FULL/FIRST/MIDDLE/LAST) of protobuf
`Record` messages; history records carry the logged metrics as JSON values, the run record the
run's name, group and config.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32768
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes):
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file")
    pos, chunks = 7, []
    while pos + 7 <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < 7:  # block trailer padding
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        pos += 7
        chunk, pos = data[pos : pos + length], pos + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            chunks = [chunk]
        elif kind == MIDDLE:
            chunks.append(chunk)
        elif kind == LAST:
            yield b"".join(chunks + [chunk])
        elif kind == 0 and length == 0:
            break


def _records(run_file: Path):
    for payload in _payloads(Path(run_file).read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        yield record


def history(run_file: Path) -> list[dict]:
    """Every history row (one `wandb.log` call) of the run, as {metric: value}."""
    rows = []
    for record in _records(run_file):
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            )
    return rows


def run_info(run_file: Path) -> dict[str, str]:
    """The run's `name` (display name) and `group` ("" when it has none), from its last run record."""
    info = {}
    for record in _records(run_file):
        if record.WhichOneof("record_type") == "run":
            info = {"name": record.run.display_name, "group": record.run.run_group}
    if not info:
        raise ValueError(f"{run_file} has no run record")
    return info
