"""Which pictures a wanted picture depends on, from the packets alone (demuxed, not decoded).

The emulated residual picture of a frame is built from the emulated pictures it references, and those from theirs,
back to the last IDR picture before it in decoding order (an IDR empties the reference buffer: nothing decoded after
it refers to anything decoded before it). So only the reference pictures decoded between that IDR and the last
wanted picture of its group need emulating; on a long video with a short key-frame interval that is a small share of
the frames (every other frame is still decoded, its emulation skipped). The plan is by presentation timestamp, so
it never depends on how many frames a decoder drops.
"""

from __future__ import annotations

import os

import av

from ..decode.container import open_container
from .h264_headers import is_idr, nal_length_size

__all__ = ["emulation_needs"]


def emulation_needs(path: str | os.PathLike, wanted: set[int]) -> set[int] | None:
    """Presentation timestamps of the pictures the display indices ``wanted`` depend on (themselves included), or
    None when the packets cannot tell (a packet without timestamp, repeated timestamps, a damaged container):
    then every reference picture is emulated, as without a plan."""
    container, stream = open_container(path)
    order: list[tuple[int, bool]] = []  # (pts, IDR) in decoding order
    try:
        length_size = nal_length_size(stream.codec_context.extradata)
        for packet in container.demux(stream):
            if not packet.size:
                continue
            if packet.pts is None:
                return None
            order.append((int(packet.pts), is_idr(bytes(packet), length_size)))
    except (av.error.FFmpegError, ValueError):
        return None
    finally:
        container.close()
    display = sorted(pts for pts, _ in order)
    if len(set(display)) != len(display):
        return None
    group, group_of, decode_of = 0, {}, {}
    for d, (pts, idr) in enumerate(order):
        group += bool(idr and d)
        group_of[pts], decode_of[pts] = group, d
    last: dict[int, int] = {}  # group → decoding position of its last wanted picture
    for i in wanted:
        if 0 <= i < len(display):
            pts = display[i]
            last[group_of[pts]] = max(last.get(group_of[pts], -1), decode_of[pts])
    return {pts for pts, _ in order if decode_of[pts] <= last.get(group_of[pts], -1)}
