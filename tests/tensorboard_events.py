"""Read scalars back from TensorBoard event files (TFRecord framing: length, its CRC, the record, its CRC), with the
protobuf classes tensorboardX ships: no TensorFlow or TensorBoard needed."""

import struct


def records(path):
    with open(path, "rb") as f:
        while len(header := f.read(8)) == 8:
            (length,) = struct.unpack("<Q", header)
            f.read(4)  # CRC of the length
            yield f.read(length)
            f.read(4)  # CRC of the record


def scalars(path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of every scalar summary in an event file."""
    from tensorboardX.proto.event_pb2 import Event

    out: dict = {}
    for data in records(path):
        event = Event.FromString(data)
        for value in event.summary.value:
            if value.HasField("simple_value"):
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out
