"""Voice recordings made by FFmpeg at test time (Debian's ffmpeg, as the server uses), so the tests
carry no binaries: what phones' browsers send, and what a voice message must refuse."""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

_MADE = Path(tempfile.mkdtemp(prefix="voice-corpus-"))


def _ffmpeg(name: str, *arguments: str) -> bytes:
    out = _MADE / name
    subprocess.run(["ffmpeg", "-v", "error", "-y", *arguments, str(out)], check=True)
    return out.read_bytes()


@functools.cache
def webm_opus(seconds: int = 3) -> bytes:
    """As Chromium's MediaRecorder writes it: WebM with Opus, streamed (no duration in its header)."""
    return _ffmpeg(
        f"chromium-{seconds}.webm", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
        "-c:a", "libopus", "-f", "webm", "-live", "1",
    )  # fmt: skip


@functools.cache
def mp4_aac(seconds: int = 3) -> bytes:
    """As Safari's (iOS) MediaRecorder writes it: MP4 with AAC."""
    return _ffmpeg(
        f"safari-{seconds}.m4a", "-f", "lavfi", "-i", f"sine=frequency=523:duration={seconds}", "-c:a", "aac",
    )  # fmt: skip


@functools.cache
def mp4_aac_titled(title: str) -> bytes:
    """As a phone's voice memo app keeps it: named after where it was recorded."""
    return _ffmpeg(
        "memo.m4a", "-f", "lavfi", "-i", "sine=frequency=523:duration=3", "-c:a", "aac",
        "-metadata", f"title={title}", "-metadata", "comment=recorded at home",
    )  # fmt: skip


@functools.cache
def ogg_opus(seconds: int = 3) -> bytes:
    """As Firefox's MediaRecorder writes it: Ogg with Opus."""
    return _ffmpeg(
        f"firefox-{seconds}.ogg", "-f", "lavfi", "-i", f"sine=frequency=660:duration={seconds}", "-c:a", "libopus",
    )  # fmt: skip


@functools.cache
def video_named_m4a() -> bytes:
    """A film (H.264 and AAC in MP4) sent under a voice message's name."""
    return _ffmpeg(
        "film.m4a", "-f", "lavfi", "-i", "sine=duration=2", "-f", "lavfi", "-i", "testsrc=duration=2:size=64x48",
        "-c:a", "aac", "-c:v", "libx264", "-f", "mp4",
    )  # fmt: skip


@functools.cache
def two_hours_m4a() -> bytes:
    """Two hours of silence in about 450 KB: a minute encoded once, then copied 120 times."""
    minute = _ffmpeg(
        "minute.m4a", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "60", "-c:a", "aac", "-b:a", "8k"
    )
    assert minute
    return _ffmpeg("two-hours.m4a", "-stream_loop", "119", "-i", str(_MADE / "minute.m4a"), "-c", "copy")


@functools.cache
def ten_minutes_streamed_webm() -> bytes:
    """Ten minutes as a browser streams them: nothing in the header says how long, only decoding does."""
    minute = _ffmpeg("minute-opus.ogg", "-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "60", "-c:a", "libopus")
    assert minute
    return _ffmpeg(
        "ten-minutes.webm", "-stream_loop", "9", "-i", str(_MADE / "minute-opus.ogg"), "-c", "copy",
        "-f", "webm", "-live", "1",
    )  # fmt: skip


def truncated(data: bytes) -> bytes:
    """The first half: a recording whose upload was cut short."""
    return data[: len(data) // 2]


@functools.cache
def faststart_mp4_aac() -> bytes:
    """MP4 with its index first, so a cut-short copy still has a header promising the whole length."""
    return _ffmpeg(
        "faststart.m4a", "-f", "lavfi", "-i", "sine=duration=3", "-c:a", "aac", "-movflags", "+faststart",
    )  # fmt: skip
