"""The W&B offline runs that ablate-export writes, read back record by record, for the tests
of its wandb format."""

import struct


def wandb_records(path):
    """The records of a .wandb file: W&B's 7-byte header, then LevelDB's log format (32 KiB
    blocks of chunks, each a 7-byte header of checksum, length and type: full, first, middle,
    last). Each record is a wandb Record proto."""
    from wandb.proto import wandb_internal_pb2
    data = path.read_bytes()
    assert data[:7] == b":W&B\xe1\xbe\x00", data[:7]
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            pos += left - 7 - length
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
