#!/usr/bin/env python3
"""Publish synthetic video (H264 or VP8) and Opus audio to a WHIP endpoint with aiortc.

A WebRTC client recnode did not write, for the end-to-end tests (tests/whip_aiortc.rs).
It generates a moving 320x240 test picture and a 440 Hz tone in real time, publishes
them for --seconds, then (unless --vanish) sends DELETE, and prints one JSON line:

    {"status": 201, "location": "/whip/cam/...", "video_frames": 180, "audio_frames": 300, ...}

`video_frames` / `audio_frames` count the frames the encoders turned into RTP packets
(frames an encoder skipped are not counted). --audio-delay starts the audio that many
seconds after the video, so a test can check that the recording keeps the gap.
--vanish stops sending and exits without DELETE and without closing the connection, as a
publisher whose network went away would.

Usage: whip_publish.py --url http://127.0.0.1:7777/whip/cam --codec vp8 --seconds 6
"""

import argparse
import asyncio
import fractions
import json
import math
import os
import struct
import sys
import time
import urllib.error
import urllib.request

import av
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
import aiortc.rtcrtpsender as rtcrtpsender

VIDEO_CLOCK = 90000
AUDIO_RATE = 48000
AUDIO_SAMPLES = 960  # 20 ms

# Frames the encoders actually produced payloads for, per kind.
SENT = {"video": 0, "audio": 0}


class CountingEncoder:
    """Wraps an aiortc encoder and counts the frames it encoded into RTP payloads."""

    def __init__(self, inner, kind):
        self.inner = inner
        self.kind = kind

    def encode(self, frame, force_keyframe=False):
        payloads, timestamp = self.inner.encode(frame, force_keyframe)
        if payloads:
            SENT[self.kind] += 1
        return payloads, timestamp

    def __getattr__(self, name):
        return getattr(self.inner, name)


_get_encoder = rtcrtpsender.get_encoder


def counting_get_encoder(codec):
    kind = "video" if codec.mimeType.lower().startswith("video/") else "audio"
    return CountingEncoder(_get_encoder(codec), kind)


rtcrtpsender.get_encoder = counting_get_encoder


class Clock:
    """The publisher's shared time zero, fixed when the first track asks for a frame.

    aiortc starts its senders only once DTLS is up, which can take a second on a loaded
    machine. Fixing time zero then, rather than when the answer arrives, keeps every frame
    paced in real time: frames due before the connection was up would otherwise go out in
    one burst, and the RTCP sender reports (which pair the last packet sent with the wall
    clock) would no longer say when each track really started.
    """

    def __init__(self):
        self.start = None

    def origin(self):
        if self.start is None:
            self.start = time.time() + 0.1
        return self.start


class PacedTrack(MediaStreamTrack):
    """Frames in real time from `clock.origin() + offset`, `count` of them, then the track ends."""

    def __init__(self, kind, clock, offset, count, period):
        super().__init__()
        self.kind = kind
        self.clock = clock
        self.offset = offset
        self.count = count
        self.period = period
        self.index = 0

    async def recv(self):
        if self.index >= self.count:
            self.stop()
            raise MediaStreamError
        due = self.clock.origin() + self.offset + self.index * self.period
        delay = due - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = self.make(self.index)
        self.index += 1
        return frame


class PatternTrack(PacedTrack):
    """A moving gradient, so every frame has real content to encode."""

    def __init__(self, clock, seconds, fps):
        super().__init__("video", clock, 0.0, int(round(seconds * fps)), 1.0 / fps)
        self.fps = fps

    def make(self, i):
        frame = av.VideoFrame(width=320, height=240, format="yuv420p")
        shift = (i * 4) % 256
        row = bytes((x + shift) % 256 for x in range(320))
        frame.planes[0].update(row * 240)
        frame.planes[1].update(bytes([(i * 3) % 256]) * (160 * 120))
        frame.planes[2].update(bytes([128]) * (160 * 120))
        frame.pts = int(round(i * VIDEO_CLOCK / self.fps))
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        return frame


class ToneTrack(PacedTrack):
    """A 440 Hz tone in 20 ms frames."""

    def __init__(self, clock, offset, seconds):
        count = int(round((seconds - offset) * AUDIO_RATE / AUDIO_SAMPLES))
        super().__init__("audio", clock, offset, max(count, 0), AUDIO_SAMPLES / AUDIO_RATE)

    def make(self, i):
        frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_SAMPLES)
        base = i * AUDIO_SAMPLES
        samples = [
            int(8000 * math.sin(2 * math.pi * 440 * (base + n) / AUDIO_RATE))
            for n in range(AUDIO_SAMPLES)
        ]
        frame.planes[0].update(struct.pack(f"<{AUDIO_SAMPLES}h", *samples))
        frame.sample_rate = AUDIO_RATE
        frame.pts = base
        frame.time_base = fractions.Fraction(1, AUDIO_RATE)
        return frame


def http(method, url, body=None, headers=None):
    """One HTTP request; returns (status, headers, body) even for 4xx/5xx."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


async def ended(track):
    """Waits until `track` ends (its sender ran out of frames)."""
    done = asyncio.Event()
    track.on("ended", done.set)
    if track.readyState == "ended":
        return
    await done.wait()


async def publish(args):
    loop = asyncio.get_running_loop()
    pc = RTCPeerConnection()
    result = {"codec": args.codec}
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def on_state():
        result["state"] = pc.connectionState
        if pc.connectionState == "connected":
            connected.set()

    # Frames are paced from one time zero, fixed when the senders start (see Clock).
    clock = Clock()
    video = PatternTrack(clock, args.seconds, args.fps)
    audio = ToneTrack(clock, args.audio_delay, args.seconds)
    vt = pc.addTransceiver(video, direction="sendonly")
    mime = {"vp8": "video/VP8", "h264": "video/H264"}[args.codec]
    caps = RTCRtpSender.getCapabilities("video").codecs
    vt.setCodecPreferences([c for c in caps if c.mimeType == mime])
    pc.addTransceiver(audio, direction="sendonly")

    await pc.setLocalDescription(await pc.createOffer())
    headers = {"Content-Type": "application/sdp"}
    if args.token:
        headers["Authorization"] = f"Bearer {args.token}"
    status, response_headers, body = await loop.run_in_executor(
        None, lambda: http("POST", args.url, pc.localDescription.sdp.encode(), headers)
    )
    result["status"] = status
    if status != 201:
        result["error"] = body
        print(json.dumps(result), flush=True)
        await pc.close()
        return 1
    location = response_headers.get("Location") or response_headers.get("location")
    result["location"] = location
    result["etag"] = response_headers.get("ETag") or response_headers.get("etag")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    try:
        await asyncio.wait_for(connected.wait(), timeout=20)
    except asyncio.TimeoutError:
        result["error"] = f"not connected: {pc.connectionState}"
        print(json.dumps(result), flush=True)
        await pc.close()
        return 1

    # Real-time publishing: both tracks end after their frames.
    await asyncio.wait_for(
        asyncio.gather(ended(video), ended(audio)), timeout=args.seconds + 30
    )
    result["video_frames"] = SENT["video"]
    result["audio_frames"] = SENT["audio"]

    if args.vanish:
        print(json.dumps(result), flush=True)
        os._exit(0)  # no DELETE, no DTLS close: the server must time the session out

    base = args.url.split("/whip/")[0]
    delete_headers = {}
    if args.token:
        delete_headers["Authorization"] = f"Bearer {args.token}"
    status, _, body = await loop.run_in_executor(
        None, lambda: http("DELETE", base + location, None, delete_headers)
    )
    result["delete_status"] = status
    await pc.close()
    print(json.dumps(result), flush=True)
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--codec", choices=["vp8", "h264"], default="vp8")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--token")
    parser.add_argument("--audio-delay", type=float, default=0.0)
    parser.add_argument("--vanish", action="store_true")
    args = parser.parse_args()
    sys.exit(asyncio.run(publish(args)))


if __name__ == "__main__":
    main()
