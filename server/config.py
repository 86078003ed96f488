"""Settings from the environment (and a ``.env`` file), with command-line flags over them."""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field, fields, replace

from dotenv import load_dotenv

PROVIDERS = ("local", "openai")
STAGES = ("stt", "llm", "tts")
DATABASE_SCHEMES = ("sqlite", "sqlite+aiosqlite", "postgresql", "postgres", "postgresql+asyncpg")
ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")  # no path, no spaces: it goes into a CSP header


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Environment names are ``PARLEY_`` + the field name in upper case."""

    host: str = "127.0.0.1"
    port: int = 8080
    # Provider per stage: "local" runs the embedded models in this process, "openai" calls OpenAI or any
    # OpenAI-compatible server. Unset: "openai" when OPENAI_API_KEY is set (the seed's setup), else "local".
    stt: str = ""
    llm: str = ""
    tts: str = ""
    # Remote models and endpoints per stage ("" = whisper-1 / gpt-4o-mini / gpt-4o-mini-tts, OPENAI_BASE_URL).
    stt_model: str = ""
    llm_model: str = ""
    tts_model: str = ""
    stt_base_url: str = ""
    llm_base_url: str = ""
    tts_base_url: str = ""
    # API key per stage, sent only to that stage's endpoint. OPENAI_API_KEY goes only to OpenAI's own endpoint
    # (or wherever the OpenAI SDK's own OPENAI_BASE_URL points, the stage's base URL being unset), unless
    # share_openai_key says it may go to every stage's endpoint. Kept out of repr(): settings may be logged.
    stt_api_key: str = field(default="", repr=False)
    llm_api_key: str = field(default="", repr=False)
    tts_api_key: str = field(default="", repr=False)
    share_openai_key: bool = False
    stt_timeout_s: float = 15.0
    llm_timeout_s: float = 20.0
    tts_timeout_s: float = 15.0
    max_retries: int = 2
    # Remote TTS voices per mode.
    voice_interview: str = "coral"
    voice_language: str = "nova"
    voice_chat: str = "shimmer"
    # Silence (ms) after the person's last speech before their turn is taken as finished; unset: per mode
    # (interview 1300, language practice 1200, chat 700: answers and learners pause longer).
    hangover_ms: int | None = None
    # VAD speech probability that starts speech; speech ends below threshold - 0.15 (hysteresis).
    vad_threshold: float = 0.5
    # Consecutive 32 ms windows above the threshold needed to confirm speech (and barge in).
    vad_start_windows: int = 3
    # While the bot speaks its audio pauses at the first speech window; this many confirm a barge-in (laughter
    # and coughs are shorter, and the bot then goes on).
    barge_in_windows: int = 8
    # The end-of-turn model (server/audio/turn_model.py, Smart Turn v3): at each pause it says whether the person has
    # finished, so a finished turn is answered sooner and a thinking pause waits longer. "off": silence and words only.
    turn_model: str = "on"
    # Silence that ends a turn the end-of-turn model says is complete (unset: the mode's hang-over, no sooner).
    turn_complete_ms: int | None = None
    # Listen ahead (server/dialogue/ahead.py): transcribe while the person talks and have the chat model read
    # their words so far. "auto": when the chat model keeps a cache to read them into (the embedded one) and
    # speech recognition is embedded too (remote partial transcripts would be paid for).
    listen_ahead: str = "auto"  # or "on", "off"
    # Threads the embedded models may use for inference (the machine has 2 cores).
    threads: int = 2
    # The chat model's context, tokens: the embedded model is loaded with it, and the history is trimmed to fit it
    # with room for the reply (for a remote model too, counted by an estimate: a compatible server may be small).
    llm_context: int = 4096
    llm_max_tokens: int = 120
    # Offer loopback ICE candidates only (tests and benchmarks on one machine, in a network namespace).
    ice_loopback: bool = False
    # STUN/TURN servers for the server's peer connections and the call page, as a JSON list (see server/ice.py).
    ice_servers: str = ""
    # Remote ICE candidates the server may send checks to besides ordinary addresses (server/candidates.py): a
    # comma-separated list of loopback, link-local, multicast, mdns; "auto": loopback when ice_loopback is on.
    ice_allow_candidates: str = "auto"
    # A call whose connection (ICE and DTLS) is not up this long after its offer was answered is hung up.
    connect_timeout_s: float = 5.0
    # A request whose headers, or an offer whose body, take longer than this to arrive is cut off (slow clients).
    http_timeout_s: float = 10.0
    # Admission: concurrent calls (0: 2 when any stage runs embedded models on this machine, else 5, which
    # one event loop paces cleanly: python -m bench.capacity), offers
    # per minute from one client address (0: no limit here, for a balancer that limits them), an optional bearer
    # token for /offer.
    max_calls: int = 0
    offers_per_minute: int = 20
    token: str = ""
    # Concurrent calls from one client address (0: no limit); one more gets 429 until one of them ends.
    calls_per_address: int = 3
    # Call tokens (server/tokens.py): an app's backend trades one of the API keys (comma-separated) at POST /tokens
    # for a short-lived, single-use token the browser presents to /ice and /offer. The signing keys (comma-separated,
    # at least 32 bytes each): the first signs, all verify, so a key rotates without downtime.
    api_keys: str = ""
    signing_keys: str = ""
    call_token_ttl_s: float = 60.0
    # An SQLite file the workers of one host share, so a call token spent on one is refused on the others (the
    # cluster command sets it; "" = each process remembers its own).
    spent_tokens_db: str = ""
    # TURN credentials that expire (coturn's use-auth-secret): the shared secret, the turn:/turns: URLs
    # (comma-separated), and how long a credential may start an allocation, in seconds.
    turn_secret: str = ""
    turn_urls: str = ""
    turn_ttl_s: int = 300
    # Data-channel messages one call may send: this many a second on average, at most message_burst at once; more
    # are dropped with a "rate_limited" error (server/message_rate.py), so one call cannot starve the others.
    messages_per_second: float = 5.0
    message_burst: int = 10
    # A call ends (with an "ended" event first) after this long, or after this long without the person speaking or
    # typing (control messages do not count).
    max_call_s: float = 1800.0
    idle_s: float = 300.0
    # A peer whose audio stops arriving for this long has vanished (tab killed, network gone), or whose connection
    # failed: the call keeps its state and its slot for reconnect_s, for its client to come back with a re-offer
    # (POST /resume), then ends. 0: it ends at once.
    peer_timeout_s: float = 10.0
    reconnect_s: float = 30.0
    # Other origins whose pages may place calls (comma-separated, e.g. https://app.example.com).
    cors_origins: str = ""
    # Other origins whose pages may show the call page in a frame (comma-separated; the frame needs
    # allow="microphone"). The page's own origin always may.
    frame_origins: str = ""
    # Proxies (comma-separated IPs or CIDR networks) whose X-Forwarded-For/-Proto/-Host are believed: requests
    # from them count against the real caller's address limits and pass the same-origin check as https.
    trusted_proxies: str = ""
    # On SIGTERM: seconds the node waits for its calls to end by themselves (new calls get 503, /healthz and the
    # agent say drain) before it ends the rest (``ended``, ``shutdown``); a second signal ends them at once.
    drain_s: float = 300.0
    # HAProxy agent check (server/agent.py): a TCP port on ``host`` that says how many call slots are free
    # (0: off).
    agent_port: int = 0
    # Who decides which key points an interview answer covered: "offline" (the app's phrase matching),
    # "remote" (the chat model over the OpenAI API, falling back to offline), "auto" (remote when PARLEY_LLM=openai).
    judge: str = "auto"
    # The record of every call (server/history/): "on" keeps it in the database below, "off" keeps nothing.
    history: str = "on"
    # Where the server keeps what it writes (the history's SQLite file); "" = $XDG_DATA_HOME/parley
    # (~/.local/share/parley).
    data_dir: str = ""
    # The history's database: "" = SQLite in data_dir; a postgresql:// URL (asyncpg) for a cluster's workers.
    database_url: str = field(default="", repr=False)  # may hold a password
    # Records of sessions that started longer ago than this are deleted (checked hourly); 0 = kept for ever.
    retention_days: float = 0.0
    # Recording calls (both sides, Opus in Ogg, beside the database): "off", or "on" = offered to the person, who
    # ticks a box on the page for each call they want recorded (server/history/recording.py).
    recording: str = "off"
    log_level: str = "INFO"
    log_format: str = "text"  # or "json": one object per line

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        if env is None:
            load_dotenv(override=False)
            env = dict(os.environ)
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"PARLEY_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _convert(f.type, f.name, raw)
        settings = cls(**values)  # type: ignore[arg-type]
        settings = settings.resolved(bool(env.get("OPENAI_API_KEY")))
        settings.validate()
        return settings

    def resolved(self, has_openai_key: bool) -> Settings:
        """Fills the unset providers: the seed's OpenAI setup when a key is there, else the embedded models."""
        default = "openai" if has_openai_key else "local"
        return replace(self, **{stage: getattr(self, stage) or default for stage in STAGES})

    def call_capacity(self) -> int:
        if self.max_calls > 0:
            return self.max_calls
        return 2 if any(self.provider(stage) == "local" for stage in STAGES) else 5

    def provider(self, stage: str) -> str:
        return getattr(self, stage) or "local"

    def validate(self) -> None:
        for stage in STAGES:
            if getattr(self, stage) not in ("", *PROVIDERS):
                raise ValueError(f"PARLEY_{stage.upper()} must be one of {', '.join(PROVIDERS)}")
        from server.ice import parse_servers

        parse_servers(self.ice_servers)  # raises ValueError naming the variable
        self._validate_access()
        if self.hangover_ms is not None and not 100 <= self.hangover_ms <= 5000:
            raise ValueError("PARLEY_HANGOVER_MS must be between 100 and 5000")
        if self.turn_complete_ms is not None and not 100 <= self.turn_complete_ms <= 5000:
            raise ValueError("PARLEY_TURN_COMPLETE_MS must be between 100 and 5000")
        if self.turn_model not in ("on", "off"):
            raise ValueError("PARLEY_TURN_MODEL must be on or off")
        if self.listen_ahead not in ("auto", "on", "off"):
            raise ValueError("PARLEY_LISTEN_AHEAD must be auto, on or off")
        if self.judge not in ("auto", "offline", "remote"):
            raise ValueError("PARLEY_JUDGE must be one of auto, offline, remote")
        if not 0.15 < self.vad_threshold < 1:
            raise ValueError("PARLEY_VAD_THRESHOLD must be between 0.15 and 1")
        if self.messages_per_second <= 0 or self.message_burst < 1:
            raise ValueError("PARLEY_MESSAGES_PER_SECOND must be above 0 and PARLEY_MESSAGE_BURST at least 1")
        from server.sdp_guard import parse_allowed

        parse_allowed(self.ice_allow_candidates, self.ice_loopback)  # raises ValueError naming the variable
        if self.connect_timeout_s <= 0 or self.http_timeout_s <= 0:
            raise ValueError("PARLEY_CONNECT_TIMEOUT_S and PARLEY_HTTP_TIMEOUT_S must be above 0")
        if not 1 <= self.vad_start_windows <= self.barge_in_windows <= 30:
            raise ValueError("need 1 <= PARLEY_VAD_START_WINDOWS <= PARLEY_BARGE_IN_WINDOWS <= 30")

    def frame_origin_list(self) -> list[str]:
        return [o.strip() for o in self.frame_origins.split(",") if o.strip()]

    def _validate_access(self) -> None:
        from server.ice import parse_turn_urls
        from server.proxies import parse_trusted
        from server.tokens import MAX_TTL_S, parse_keys

        parse_trusted(self.trusted_proxies)  # raises ValueError naming the variable
        if parse_keys(self.signing_keys) and not (self.api_keys.strip(" ,") or self.token):
            raise ValueError("PARLEY_SIGNING_KEYS needs PARLEY_API_KEYS (or PARLEY_TOKEN): they authorize POST /tokens")
        if not 1 <= self.call_token_ttl_s <= MAX_TTL_S:
            raise ValueError(f"PARLEY_CALL_TOKEN_TTL_S must be between 1 and {MAX_TTL_S}")
        if bool(self.turn_secret) != bool(parse_turn_urls(self.turn_urls)):
            raise ValueError("PARLEY_TURN_SECRET and PARLEY_TURN_URLS go together")
        if not 30 <= self.turn_ttl_s <= 86400:
            raise ValueError("PARLEY_TURN_TTL_S must be between 30 and 86400")
        if any(not ORIGIN.fullmatch(o) for o in self.frame_origin_list()):
            raise ValueError("PARLEY_FRAME_ORIGINS must be origins like https://app.example.com, comma-separated")
        if self.calls_per_address < 0:
            raise ValueError("PARLEY_CALLS_PER_ADDRESS must be 0 (no limit) or more")
        if not 0 <= self.agent_port <= 65535:
            raise ValueError("PARLEY_AGENT_PORT must be a TCP port (1-65535), or 0 for none")
        if self.drain_s < 0:
            raise ValueError("PARLEY_DRAIN_S must be 0 or more")
        if self.offers_per_minute < 0:
            raise ValueError("PARLEY_OFFERS_PER_MINUTE must be 0 (no limit here) or more")
        if self.history not in ("on", "off"):
            raise ValueError("PARLEY_HISTORY must be on or off")
        if self.recording not in ("on", "off"):
            raise ValueError("PARLEY_RECORDING must be on or off")
        if self.retention_days < 0:
            raise ValueError("PARLEY_RETENTION_DAYS must be 0 (kept for ever) or more")
        if self.database_url and self.database_url.split("://", 1)[0] not in DATABASE_SCHEMES:
            raise ValueError(f"PARLEY_DATABASE_URL must start with one of {', '.join(DATABASE_SCHEMES)}://")


def _convert(kind: object, name: str, raw: str) -> object:
    try:
        if kind in (int, "int", "int | None"):
            return int(raw)
        if kind in (float, "float", "float | None"):
            return float(raw)
        if kind in (bool, "bool"):
            return _bool(raw)
    except ValueError as exc:
        raise ValueError(f"PARLEY_{name.upper()}={raw!r} is not a valid value") from exc
    return raw


def parse_args(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m server", description="Parley voice practice server")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080)")
    parser.add_argument("--stt", choices=PROVIDERS)
    parser.add_argument("--llm", choices=PROVIDERS)
    parser.add_argument("--tts", choices=PROVIDERS)
    parser.add_argument("--hangover-ms", type=int, help="silence that ends a turn, in ms")
    parser.add_argument("--ice-loopback", action="store_true", default=None, help="loopback ICE only")
    parser.add_argument("--log-level")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    overrides = {k: v for k, v in vars(args).items() if v is not None}
    # A stage named on the command line wins over the environment and over the OPENAI_API_KEY default.
    settings = replace(settings, **overrides)
    settings.validate()
    return settings
