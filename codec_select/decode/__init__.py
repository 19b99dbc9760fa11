"""Reading video: the container and what it declares (``container``), the one decoder (``reader``), a decoded
frame's luma / vectors / picture type (``frames``), the packet timeline (``timeline``), long videos in windows
(``plan``, ``windowed``) and the slot pixels (``pixels``, whose :func:`~codec_select.decode.pixels.slot_frames` is
public as :func:`codec_select.slot_frames`)."""
