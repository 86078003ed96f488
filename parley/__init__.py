"""Parley from Python: place a voice call to a Parley server over WebRTC, talk to it, read what happens.

Example::

    import asyncio
    import parley

    async def main() -> None:
        async with parley.connect("http://127.0.0.1:8080", mode="interview", language="en") as call:
            for line in await call.greeting():           # the bot speaks first
                print("bot:", line.text)
            started = await call.play_wav("answer.wav")   # a WAV file as the microphone
            heard = await call.wait_for(parley.Transcript, role="user", since=started)
            reply = await call.wait_for(parley.Transcript, role="assistant", since=heard)
            print("bot:", reply.text)
            print((await call.ask("Can you repeat the question?")).text)
            card = await call.end()                       # an interview's scorecard
            call.save_wav("bot.wav")                      # everything the bot said
        print(card)

    asyncio.run(main())

Events arrive typed (``async for event in call:``; ``parley.events`` has one dataclass per kind of
docs/protocol.md). ``parley.rtc.CallClient`` is the WebRTC peer underneath. The command line:
``python -m client --wav in.wav`` (``parley/call_cli.py``). More in docs/python.md.
"""

from parley.audio import RATE, read_wav, write_wav
from parley.call import Call, CallEnded, ServerError, connect
from parley.events import (
    Caption,
    Controls,
    Ended,
    ErrorEvent,
    Event,
    Interrupted,
    Lost,
    Metrics,
    Ready,
    Reconnecting,
    Scorecard,
    ScoredQuestion,
    Speech,
    State,
    Transcript,
    UnknownEvent,
)
from parley.rtc import Refused

__all__ = [
    "RATE",
    "Call",
    "CallEnded",
    "Caption",
    "Controls",
    "Ended",
    "ErrorEvent",
    "Event",
    "Interrupted",
    "Lost",
    "Metrics",
    "Ready",
    "Reconnecting",
    "Refused",
    "Scorecard",
    "ScoredQuestion",
    "ServerError",
    "Speech",
    "State",
    "Transcript",
    "UnknownEvent",
    "connect",
    "read_wav",
    "write_wav",
]
