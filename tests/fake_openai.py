"""A small OpenAI-compatible server for tests: the endpoints as the API reference describes them (multipart
transcription upload, streamed PCM speech, streamed chat), with faults to order."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import numpy as np
from aiohttp import web
from aiohttp.test_utils import TestServer

KEY = "sk-test-parley-0123456789abcdef"
PCM_RATE = 24_000


@dataclass
class Faults:
    statuses: list[int] = field(default_factory=list)  # answered (then removed) before any real answer
    delay_s: float = 0.0  # before answering
    cut_after_bytes: int | None = None  # speech (chat: about 40 per word): stop the stream here, mid-answer
    models: tuple[str, ...] = ("whisper-1", "gpt-4o-mini", "gpt-4o-mini-tts")


@dataclass
class Seen:
    requests: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the Authorization header of every request, as sent
    transcriptions: list[dict] = field(default_factory=list)
    speech: list[dict] = field(default_factory=list)
    chats: list[dict] = field(default_factory=list)


class FakeOpenAI:
    def __init__(
        self, transcript: str = "hello from the fake", reply: str = "Hello there. How are you today?", key: str = KEY
    ):
        self.transcript, self.reply, self.key = transcript, reply, key
        self.faults, self.seen = Faults(), Seen()
        self._server: TestServer | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("/v1"))

    async def start(self, host: str = "127.0.0.1") -> FakeOpenAI:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/chat/completions", self._chat)
        self._server = TestServer(app, host=host)
        await self._server.start_server()
        return self

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()

    @web.middleware
    async def _gate(self, request: web.Request, handler) -> web.StreamResponse:
        self.seen.requests.append(request.path)
        self.seen.keys.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return web.json_response({"error": {"message": "Incorrect API key", "type": "invalid_request_error"}},
                                     status=401)  # fmt: skip
        if self.faults.statuses:
            status = self.faults.statuses.pop(0)
            return web.json_response({"error": {"message": f"fault {status}", "type": "server_error"}}, status=status)
        if self.faults.delay_s:
            await asyncio.sleep(self.faults.delay_s)
        return await handler(request)

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model"} for m in self.faults.models]})

    async def _transcribe(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        audio = upload.file.read()  # type: ignore[union-attr]
        self.seen.transcriptions.append({"model": form.get("model"), "language": form.get("language"),
                                         "bytes": len(audio), "wav": audio[:4] == b"RIFF"})  # fmt: skip
        return web.json_response({"text": self.transcript})

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.speech.append(body)
        seconds = 0.06 * len(body["input"].split()) + 0.2
        t = np.arange(int(seconds * PCM_RATE)) / PCM_RATE
        pcm = (0.4 * 32767 * np.sin(2 * np.pi * 330 * t)).astype("<i2").tobytes()
        response = web.StreamResponse(headers={"Content-Type": "audio/pcm"})
        await response.prepare(request)
        sent = 0
        for i in range(0, len(pcm), 4801):  # odd-sized chunks: samples split across chunks
            if self.faults.cut_after_bytes is not None and sent >= self.faults.cut_after_bytes:
                request.transport.close()  # type: ignore[union-attr]
                return response
            await response.write(pcm[i : i + 4801])
            sent += 4801
            await asyncio.sleep(0.02)
        await response.write_eof()
        return response

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.chats.append(body)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for n, word in enumerate(self.reply.split(" ")):
            if self.faults.cut_after_bytes is not None and n * 40 >= self.faults.cut_after_bytes:
                request.transport.close()  # type: ignore[union-attr]  # the replica died mid-reply
                return response
            chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}  # fmt: skip
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await asyncio.sleep(0.005)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
