// Types of parley.js and parley-call.js: the messages of docs/protocol.md as a discriminated union on `type`.

export type Mode = "interview" | "language" | "chat";
/** The server's languages (GET /languages lists them); any code it adds later is a string too. */
export type Language =
  | "en" | "es" | "fr" | "de" | "zh" | "hi" | "ja" | "ko" | "pt" | "ar" | "ru" | "it" | "nl" | (string & {});
/** The call's state: the server's (listening, thinking, speaking) and the client's own. */
export type CallState = "idle" | "connecting" | "listening" | "thinking" | "speaking" | "reconnecting" | "ended";

// ---- Server to client (the `events` data channel) ----

export interface ReadyEvent { type: "ready"; session_id: string; mode: Mode; language: Language }
export interface StateEvent { type: "state"; state: CallState }
export interface SpeechEvent { type: "speech"; event: "start" | "end" }
export interface TranscriptEvent {
  type: "transcript";
  role: "user" | "assistant";
  text: string;
  interrupted: boolean;
  /** The person took up their own turn: this line replaces their previous one and the reply cut in between. */
  continues?: boolean;
}
export interface CaptionEvent { type: "caption"; role: "assistant"; text: string }
export interface InterruptedEvent { type: "interrupted"; heard: string }
export interface MetricsEvent {
  type: "metrics";
  turn: number;
  stt_ms: number | null;
  llm_first_token_ms: number;
  llm_first_sentence_ms: number;
  tts_first_audio_ms: number;
  response_ms: number;
  [more: string]: unknown;
}
export type ErrorCode = "bad_message" | "too_large" | "rate_limited" | "provider_failed" | "internal" | "not_allowed";
export interface ErrorEvent { type: "error"; code: ErrorCode; message: string }
export type Verdict = "correct" | "partly" | "wrong" | "no_answer" | "skipped" | "unanswered";
export interface ScoredQuestion {
  id: string;
  topic: string;
  level: string;
  question: string;
  verdict: Verdict;
  covered: string[];
  missed: string[];
}
export interface ScorecardEvent {
  type: "scorecard";
  questions: ScoredQuestion[];
  asked: number;
  answered: number;
  totals: Record<Exclude<Verdict, "unanswered">, number>;
  level: string;
  study_next: string[];
}
/** Server reasons; `lost` and a `local` flag when the client ended the call itself (see `Call.end`). */
export type EndReason = "idle" | "max_duration" | "peer_gone" | "shutdown" | "requested" | "media_failed" | "lost";
export interface EndedEvent { type: "ended"; reason: EndReason; local?: boolean }
export interface Controls { muted: boolean; held: boolean; push_to_talk: boolean; talking: boolean }
export interface ControlsEvent extends Controls { type: "controls" }

/** Every message the server sends. */
export type ServerMessage =
  | ReadyEvent | StateEvent | SpeechEvent | TranscriptEvent | CaptionEvent | InterruptedEvent | MetricsEvent
  | ErrorEvent | ScorecardEvent | EndedEvent | ControlsEvent;

// ---- Client to server ----

export type ClientMessage =
  | { type: "text"; text: string }
  | { type: "mode"; mode: Mode; language?: Language }
  | { type: "reset" }
  | { type: "end" }
  | { type: "scorecard" }
  | { type: "mute"; muted: boolean }
  | { type: "hold"; held: boolean }
  | { type: "push_to_talk"; enabled: boolean }
  | { type: "talk"; pressed: boolean };

// ---- The call ----

/** The events of a `Call` and their `detail`: the server's messages by type, and the call's own. */
export interface CallEventMap {
  message: ServerMessage;
  ready: ReadyEvent;
  state: StateEvent;
  speech: SpeechEvent;
  transcript: TranscriptEvent;
  caption: CaptionEvent;
  interrupted: InterruptedEvent;
  metrics: MetricsEvent;
  error: ErrorEvent;
  scorecard: ScorecardEvent;
  /** Once per call, whatever ended it. */
  ended: EndedEvent;
  controls: ControlsEvent;
  /** The events channel opened (again, after a reconnection): messages can be sent. */
  open: Record<string, never>;
  /** The media connected, the first time. */
  connected: { sessionId: string };
  /** A dropped connection was replaced (POST /resume): the same call goes on. */
  reconnected: { sessionId: string };
  /** The bot's audio stream arrived. */
  track: { stream: MediaStream };
  /** The microphone the call sends (at start, and after `switchMicrophone`). */
  microphone: { stream: MediaStream };
  /** A message this client sent. */
  sent: ClientMessage;
}
export type CallEventType = keyof CallEventMap;
export type CallEvent<K extends CallEventType = CallEventType> = CustomEvent<CallEventMap[K]>;

export interface ConnectOptions {
  /** The Parley server's base URL; may be another origin and have a path prefix. Default: this page's folder. */
  url?: string | URL;
  /** The server's token, or a call token from the app's backend (or a function that fetches one). */
  token?: string | (() => string | Promise<string>);
  /** Asked once for another token when the server answers 401. */
  askToken?: () => string | null | Promise<string | null>;
  mode?: Mode;
  language?: Language;
  /** The microphone: a stream the app opened (not stopped by the call), or constraints over MIC_CONSTRAINTS. */
  audio?: MediaStream | MediaTrackConstraints;
  /** Where the bot's voice plays; default a new <audio> element; null: not played (use the `track` event). */
  audioElement?: HTMLMediaElement | null;
  /** Whose record the call goes into (GET /history): a random id the app keeps for the person, 16-128 of
   *  `A-Za-z0-9-_` with at least 96 random bits (see `newProfileId`). A call token's `user` wins over it. */
  profile?: string;
  /** Shown with the profile's records; at most 64 printable characters. */
  displayName?: string;
  /** The person agreed to this call's recording (both sides, kept with the history); only where `GET /languages`
   *  says `recording: true`, ignored elsewhere. Default false. */
  record?: boolean;
  /** Take a dropped call up again (POST /resume); default true. */
  reconnect?: boolean;
  /** Listeners subscribed before the call starts (`connect` only), as for `Call.on`. */
  on?: { [K in CallEventType]?: (detail: CallEventMap[K]) => void };
}

export declare const MIC_CONSTRAINTS: Readonly<MediaTrackConstraints>;

/** A new random profile id (128 bits, base64url) for `ConnectOptions.profile`. */
export declare function newProfileId(): string;

export declare class ParleyError extends Error {
  constructor(message: string, status?: number);
  /** The HTTP status when the server refused (401, 403, 429, 503, ...), 0 otherwise. */
  status: number;
}

export declare class Call extends EventTarget {
  constructor(options?: ConnectOptions);
  readonly url: URL;
  mode: Mode;
  language: Language;
  state: CallState;
  sessionId: string | null;
  readonly controls: Controls;
  pc: RTCPeerConnection | null;
  channel: RTCDataChannel | null;
  microphone: MediaStream | null;
  remoteStream: MediaStream | null;
  audioElement: HTMLMediaElement | null;
  iceServers: RTCIceServer[];
  /** performance.now() when the call first connected; 0 before. */
  connectedAt: number;
  ended: boolean;

  /** Places the call (microphone, GET /ice, POST /offer); rejects with a ParleyError. */
  start(): Promise<this>;
  /** Subscribes to one kind of event with its detail; returns the function that unsubscribes. */
  on<K extends CallEventType>(type: K, fn: (detail: CallEventMap[K]) => void): () => void;
  addEventListener<K extends CallEventType>(type: K, listener: (event: CallEvent<K>) => void,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends CallEventType>(type: K, listener: (event: CallEvent<K>) => void,
    options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions): void;
  /** Handles a server message as if it came on the events channel. */
  receive(message: ServerMessage): void;
  /** Sends a protocol message; false when the events channel is not open. */
  send(message: ClientMessage): boolean;
  sendText(text: string): boolean;
  setMode(mode: Mode, language?: Language): boolean;
  reset(): boolean;
  requestScorecard(): boolean;
  mute(muted?: boolean): boolean;
  hold(held?: boolean): boolean;
  pushToTalk(enabled?: boolean): boolean;
  talk(pressed: boolean): boolean;
  /** Another microphone: a deviceId, constraints or a stream. Resolves to the stream now sent. */
  switchMicrophone(device: string | MediaTrackConstraints | MediaStream): Promise<MediaStream>;
  /** Hangs up: the server sends what it owes, then `ended`; resolves once the call has ended (3 s at most). */
  end(): Promise<void>;
  /** Hangs up at once: tells the server (`end`) without waiting for its answer; also done when the page is left. */
  close(): void;
}

/** Places a call and resolves to it once the server has answered. */
export declare function connect(options?: ConnectOptions): Promise<Call>;
