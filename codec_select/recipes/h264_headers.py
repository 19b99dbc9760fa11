"""The few H.264 header facts the residual emulation needs that PyAV does not expose.

Read from the bytes PyAV hands over (the avcC ``extradata`` and packet payloads): NAL framing, whether a picture
is a reference (``nal_ref_idc``) and the size of the reference buffer (``max_num_ref_frames`` of the SPS).
Anything unparsable gives the safe answer (reference: yes; buffer: unknown).
"""

from __future__ import annotations

__all__ = ["is_idr", "is_reference", "list0", "max_ref_frames", "nal_length_size", "parameter_sets", "slice_header"]

_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def nal_length_size(extradata: bytes | None) -> int:
    """4, 2 or 1 for avcC (mp4/mkv) streams, 0 for Annex B start codes."""
    if extradata and len(extradata) >= 7 and extradata[0] == 1:
        return (extradata[4] & 3) + 1
    return 0


def _nal_units(data: bytes, length_size: int):
    if length_size:
        i = 0
        while i + length_size < len(data):
            size = int.from_bytes(data[i: i + length_size], "big")
            yield data[i + length_size: i + length_size + size]
            i += length_size + max(size, 1)
    else:
        starts = []
        i = data.find(b"\x00\x00\x01")
        while i >= 0:
            starts.append(i + 3)
            i = data.find(b"\x00\x00\x01", i + 3)
        for k, s in enumerate(starts):
            end = starts[k + 1] - 3 if k + 1 < len(starts) else len(data)
            yield data[s:end]


def is_idr(data: bytes, length_size: int) -> bool:
    """Whether the access unit's first slice NAL is an IDR slice (``nal_unit_type`` 5): it empties the reference
    buffer, so no later picture in decoding order depends on a picture before it."""
    for nal in _nal_units(data, length_size):
        if nal and nal[0] & 0x1F in (1, 5):
            return nal[0] & 0x1F == 5
    return False


def is_reference(data: bytes, length_size: int) -> bool:
    """Whether any slice NAL of the access unit has ``nal_ref_idc`` > 0 (True when no slice is found)."""
    seen = False
    for nal in _nal_units(data, length_size):
        if nal and nal[0] & 0x1F in (1, 5):
            seen = True
            if nal[0] & 0x60:
                return True
    return not seen


class _Bits:
    def __init__(self, payload: bytes):
        raw = bytearray()
        zeros = 0
        for b in payload:  # drop emulation-prevention bytes (00 00 03)
            if zeros >= 2 and b == 3:
                zeros = 0
                continue
            raw.append(b)
            zeros = zeros + 1 if b == 0 else 0
        self.data = bytes(raw)
        self.pos = 0

    def bit(self) -> int:
        if self.pos >= 8 * len(self.data):
            raise ValueError("SPS ended early")
        b = (self.data[self.pos >> 3] >> (7 - (self.pos & 7))) & 1
        self.pos += 1
        return b

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("bad Exp-Golomb code")
        value = 0
        for _ in range(zeros):
            value = (value << 1) | self.bit()
        return (1 << zeros) - 1 + value

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)


def max_ref_frames(extradata: bytes | None) -> int | None:
    """``max_num_ref_frames`` of the first SPS in an avcC ``extradata``, or None when it cannot be read."""
    if not extradata or len(extradata) < 8 or extradata[0] != 1 or not extradata[5] & 0x1F:
        return None
    size = int.from_bytes(extradata[6:8], "big")
    sps = extradata[8: 8 + size]
    if len(sps) < 4 or sps[0] & 0x1F != 7:
        return None
    try:
        bits = _Bits(sps[4:])  # after the NAL header, profile_idc, constraint flags and level_idc
        bits.ue()  # seq_parameter_set_id
        if sps[1] in _HIGH_PROFILES:
            if bits.ue() == 3:  # chroma_format_idc
                bits.bit()
            bits.ue()
            bits.ue()
            bits.bit()
            if bits.bit():  # scaling matrices: not worth parsing here
                return None
        bits.ue()  # log2_max_frame_num_minus4
        poc_type = bits.ue()
        if poc_type == 0:
            bits.ue()
        elif poc_type == 1:
            bits.bit()
            bits.se()
            bits.se()
            for _ in range(bits.ue()):
                bits.se()
        refs = bits.ue()
    except ValueError:
        return None
    return refs if 1 <= refs <= 16 else None


def _sps_fields(nal: bytes) -> dict:
    bits = _Bits(nal[4:])
    sps = {"id": bits.ue(), "chroma_format_idc": 1, "separate_colour_plane": 0}
    if nal[1] in _HIGH_PROFILES:
        sps["chroma_format_idc"] = bits.ue()
        if sps["chroma_format_idc"] == 3:
            sps["separate_colour_plane"] = bits.bit()
        bits.ue()
        bits.ue()
        bits.bit()
        if bits.bit():
            raise ValueError("scaling matrices are not parsed")
    sps["log2_max_frame_num"] = bits.ue() + 4
    sps["poc_type"] = bits.ue()
    sps["delta_pic_order_always_zero"] = 0
    if sps["poc_type"] == 0:
        sps["log2_max_poc_lsb"] = bits.ue() + 4
    elif sps["poc_type"] == 1:
        sps["delta_pic_order_always_zero"] = bits.bit()
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    sps["max_num_ref_frames"] = bits.ue()
    bits.bit()
    bits.ue()
    bits.ue()
    sps["frame_mbs_only"] = bits.bit()
    return sps


def _pps_fields(nal: bytes) -> dict:
    bits = _Bits(nal[1:])
    pps = {"id": bits.ue(), "sps_id": bits.ue()}
    pps["cabac"] = bits.bit()
    pps["bottom_field_poc_present"] = bits.bit()
    if bits.ue() != 0:
        raise ValueError("slice groups are not parsed")
    pps["num_ref_idx_l0"] = bits.ue() + 1
    pps["num_ref_idx_l1"] = bits.ue() + 1
    pps["weighted_pred"] = bits.bit()
    pps["weighted_bipred_idc"] = (bits.bit() << 1) | bits.bit()
    bits.se()  # pic_init_qp_minus26
    bits.se()  # pic_init_qs_minus26
    pps["chroma_qp_index_offset"] = bits.se()
    pps["deblocking_control"] = bits.bit()
    bits.bit()  # constrained_intra_pred_flag
    pps["redundant_pic_cnt_present"] = bits.bit()
    return pps


def parameter_sets(extradata: bytes | None, sets: dict | None = None, length_size: int | None = None) -> dict:
    """``{"sps": {id: fields}, "pps": {id: fields}}`` from avcC extradata, or from a packet's NAL units when
    ``length_size`` is given (0 = Annex B), merged into ``sets``.

    Parameter sets that use features not parsed here (scaling matrices, slice groups) are left out.
    """
    sets = sets if sets is not None else {"sps": {}, "pps": {}}
    if not extradata:
        return sets
    if length_size is None and extradata[0] == 1 and len(extradata) >= 7:  # avcC: counted SPS list, then PPS list
        nals, i = [], 6
        for count_bits in (0x1F, 0xFF):
            if i >= len(extradata):
                break
            count = extradata[i - 1] & count_bits if count_bits == 0x1F else extradata[i]
            i += 0 if count_bits == 0x1F else 1
            for _ in range(count):
                size = int.from_bytes(extradata[i: i + 2], "big")
                nals.append(extradata[i + 2: i + 2 + size])
                i += 2 + size
    else:
        nals = list(_nal_units(extradata, length_size or 0))
    for nal in nals:
        try:
            if nal and nal[0] & 0x1F == 7:
                sps = _sps_fields(nal)
                sets["sps"][sps["id"]] = sps
            elif nal and nal[0] & 0x1F == 8:
                pps = _pps_fields(nal)
                sets["pps"][pps["id"]] = pps
        except (ValueError, IndexError):
            continue
    return sets


def _skip_modifications(bits: _Bits) -> list:
    ops = []
    if bits.bit():
        while True:
            idc = bits.ue()
            if idc == 3:
                break
            if idc > 5 or len(ops) > 32:
                raise ValueError("bad ref_pic_list_modification")
            ops.append((idc, bits.ue()))
    return ops


def _weight_table(bits: _Bits, lists: tuple, chroma: bool) -> tuple:
    luma_log2 = bits.ue()
    chroma_log2 = bits.ue() if chroma else 0
    if luma_log2 > 7 or chroma_log2 > 7:
        raise ValueError("bad weight denominator")
    tables = []
    for count in lists:
        weights = []
        for _ in range(count):
            wy, oy = 1 << luma_log2, 0
            if bits.bit():
                wy, oy = bits.se(), bits.se()
            wu, ou, wv, ov = 1 << chroma_log2, 0, 1 << chroma_log2, 0
            if chroma and bits.bit():
                wu, ou, wv, ov = bits.se(), bits.se(), bits.se(), bits.se()
            weights.append((wy, oy, wu, ou, wv, ov))
        tables.append(weights)
    return luma_log2, chroma_log2, tables


def slice_header(data: bytes, length_size: int, sets: dict) -> dict | None:
    """What the emulation needs from the first slice header of an access unit, or None if it cannot be read.

    Always ``slice_type`` (0 P, 1 B, 2 I, 3 SP, 4 SI), ``idr``, ``frame_num`` (with ``max_frame_num``) and
    ``chroma_qp_offset``. For P/SP slices also ``num_ref_idx_l0``, ``list0`` (the reordering commands
    ``(idc, value)`` of ``ref_pic_list_modification``) and, under explicit weighted prediction, ``luma_log2``,
    ``chroma_log2`` and ``weights`` (one ``(wy, oy, wu, ou, wv, ov)`` per reference index, defaults filled in).
    When the header parses to its end: ``deblock`` = (disable_deblocking_filter_idc, FilterOffsetA,
    FilterOffsetB).
    """
    for nal in _nal_units(data, length_size):
        if not nal or nal[0] & 0x1F not in (1, 5):
            continue
        idr = nal[0] & 0x1F == 5
        out = None
        try:
            bits = _Bits(nal[1:1024])
            bits.ue()
            slice_type = bits.ue() % 5
            pps = sets["pps"].get(bits.ue())
            sps = None if pps is None else sets["sps"].get(pps["sps_id"])
            if sps is None:
                return None
            if sps["separate_colour_plane"]:
                bits.bit()
                bits.bit()
            frame_num = 0
            for _ in range(sps["log2_max_frame_num"]):
                frame_num = (frame_num << 1) | bits.bit()
            out = {"slice_type": slice_type, "idr": idr, "frame_num": frame_num,
                   "max_frame_num": 1 << sps["log2_max_frame_num"], "chroma_qp_offset": pps["chroma_qp_index_offset"]}
            if not sps["frame_mbs_only"] and bits.bit():
                return out  # field pictures: lists are built per field, not modelled
            if idr:
                bits.ue()
            if sps["poc_type"] == 0:
                for _ in range(sps["log2_max_poc_lsb"]):
                    bits.bit()
                if pps["bottom_field_poc_present"]:
                    bits.se()
            elif sps["poc_type"] == 1 and not sps["delta_pic_order_always_zero"]:
                bits.se()
                if pps["bottom_field_poc_present"]:
                    bits.se()
            if pps["redundant_pic_cnt_present"]:
                bits.ue()
            inter, bi = slice_type in (0, 1, 3), slice_type == 1
            if bi:
                bits.bit()  # direct_spatial_mv_pred_flag
            n0, n1 = pps["num_ref_idx_l0"], pps["num_ref_idx_l1"]
            if inter and bits.bit():
                n0 = bits.ue() + 1
                if bi:
                    n1 = bits.ue() + 1
            if inter:
                ops = _skip_modifications(bits)
                if bi:
                    _skip_modifications(bits)
                else:
                    out.update(num_ref_idx_l0=n0, list0=ops)
            chroma = sps["chroma_format_idc"] != 0 and not sps["separate_colour_plane"]
            if (pps["weighted_pred"] and slice_type in (0, 3)) or (pps["weighted_bipred_idc"] == 1 and bi):
                luma_log2, chroma_log2, tables = _weight_table(bits, (n0, n1) if bi else (n0,), chroma)
                if not bi:
                    out.update(luma_log2=luma_log2, chroma_log2=chroma_log2, weights=tables[0])
            if nal[0] & 0x60:  # dec_ref_pic_marking
                if idr:
                    bits.bit()
                    bits.bit()
                elif bits.bit():
                    while True:
                        op = bits.ue()
                        if op == 0:
                            break
                        if op > 6:
                            raise ValueError("bad memory_management_control_operation")
                        if op in (1, 2, 3, 6):
                            bits.ue()
                        if op in (3, 4):
                            bits.ue()
            if pps["cabac"] and slice_type not in (2, 4):
                bits.ue()  # cabac_init_idc
            bits.se()  # slice_qp_delta
            if slice_type in (3, 4):
                if slice_type == 3:
                    bits.bit()
                bits.se()
            idc, alpha, beta = 0, 0, 0
            if pps["deblocking_control"]:
                idc = bits.ue()
                if idc != 1:
                    alpha, beta = 2 * bits.se(), 2 * bits.se()
            if idc > 2 or not -12 <= alpha <= 12 or not -12 <= beta <= 12:
                raise ValueError("bad deblocking parameters")
            out["deblock"] = (idc, alpha, beta)
            return out
        except (ValueError, IndexError):
            return out  # what parsed before the problem (None if not even the start did)
    return None


def list0(header: dict, refs: list) -> list | None:
    """The P slice's reference list 0 as entries of ``refs`` ((frame_num, item) of the short-term references).

    Default order (descending FrameNumWrap), then the ``list0`` reordering commands (§8.2.4.3.1), truncated to
    ``num_ref_idx_l0``. None when a command names a picture not in ``refs`` or uses long-term references.
    """
    curr, max_fn = header["frame_num"], header["max_frame_num"]

    def wrap(fn):
        return fn - max_fn if fn > curr else fn

    order = sorted(refs, key=lambda r: -wrap(r[0]))
    pred = curr
    for idx, (idc, value) in enumerate(header.get("list0", ())):
        if idc == 0:
            no_wrap = pred - (value + 1)
            no_wrap += max_fn if no_wrap < 0 else 0
        elif idc == 1:
            no_wrap = pred + (value + 1)
            no_wrap -= max_fn if no_wrap >= max_fn else 0
        else:
            return None
        pred = no_wrap
        pic_num = no_wrap - max_fn if no_wrap > curr else no_wrap
        pick = next((r for r in refs if wrap(r[0]) == pic_num), None)
        if pick is None:
            return None
        order = order[:idx] + [pick] + [r for r in order[idx:] if r is not pick]
    return order[: header.get("num_ref_idx_l0", len(order))]
