// Parley's JavaScript client: one voice call to a Parley server over WebRTC, with its events (docs/protocol.md).
// An ES module with no build step and no dependencies; its types are in parley.d.ts, its guide docs/javascript.md.
// The bundled call page (app.js) and the <parley-call> element (parley-call.js) are both built on it.

// The server sends audio every 20 ms for the whole call, silence included: none for this long, or a connection
// "disconnected" this long, means the server is gone (crashed, or its network). Chromium took about 6 s to say
// "disconnected" after a SIGKILL, and ICE about 30 s to say "failed". A brief network blip recovers within it.
const LOST_AFTER_MS = 3000;
const STATS_EVERY_MS = 500;
// Taking a dropped call up again: how long to keep trying while the server cannot be reached (the network may be
// changing); a server that answers that the call is gone ends the attempts at once.
const RESUME_FOR_MS = 8000;
const RESUME_EVERY_MS = 1000;
const END_WAIT_MS = 3000; // end(): how long to wait for the server's "ended" (it sends a scorecard first)
const ICE_WAIT_MS = 3000; // a missing STUN answer must not hold the call
const SESSION_HEADER = "X-Parley-Session"; // takes /resume to the worker that holds the call (deploy/haproxy.cfg)

/** The microphone processing a call asks for: echo cancellation matters most (the bot must not hear itself). */
export const MIC_CONSTRAINTS = Object.freeze({ echoCancellation: true, noiseSuppression: true, autoGainControl: true });

/** A new random profile id (128 bits, base64url) for `connect({profile})`: the person's key to their records. */
export function newProfileId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A refusal by the server (HTTP 4xx/5xx with its JSON `error`), or a call that could not be placed. */
export class ParleyError extends Error {
  /** @param {string} message @param {number} [status] the HTTP status, when the server answered */
  constructor(message, status = 0) {
    super(message);
    this.name = "ParleyError";
    this.status = status;
  }
}

/** The server's base URL as a directory, so "ice" and "offer" resolve under a path prefix too. */
function baseUrl(url) {
  const base = new URL(url || ".", document.baseURI);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  base.search = "";
  base.hash = "";
  return base;
}

function gathered(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") resolve();
    });
    setTimeout(resolve, ICE_WAIT_MS);
  });
}

/** The offer of ``peer`` with all its candidates (the server does not trickle). */
async function offerFrom(peer) {
  await peer.setLocalDescription(await peer.createOffer());
  await gathered(peer);
  return { sdp: peer.localDescription.sdp, type: "offer" };
}

async function answerOf(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not JSON (a proxy's page): the status says enough
  }
  if (!response.ok) throw new ParleyError(body.error || `the server answered ${response.status}`, response.status);
  return body;
}

/**
 * One call. Create it, listen to its events, then `start()` it (or use `connect()`, which does both).
 * Every message of the server is dispatched as a `CustomEvent` named by its `type` (`transcript`, `caption`, ...)
 * with the message as `detail`, and as a `message` event; the call adds its own: `state` (also `connecting`,
 * `reconnecting`, `ended`), `open`, `connected`, `reconnected`, `track`, `microphone` and, once, `ended`.
 */
export class Call extends EventTarget {
  /** @param {import("./parley").ConnectOptions} [options] */
  constructor(options = {}) {
    super();
    this.url = baseUrl(options.url);
    this.mode = options.mode || "interview";
    this.language = options.language || "en";
    this.options = options;
    this.state = "idle";
    this.sessionId = null;
    this.controls = { muted: false, held: false, push_to_talk: false, talking: false };
    this.pc = null;
    this.channel = null;
    this.microphone = null;
    this.remoteStream = null;
    this.iceServers = [];
    this.connectedAt = 0; // performance.now() when it first connected
    this.ended = false;
    this._token = null;
    this._secret = null;
    this._ownsMic = false;
    this._lostTimer = null;
    this._resumingSince = 0;
    this._resumeTimer = null;
    this._endTimer = null;
    this._started = false;
    this._leaving = () => this.close(); // the page is closed or left: hang up rather than drop the line
    const element = options.audioElement;
    this.audioElement = element === undefined ? Object.assign(new Audio(), { autoplay: true }) : element;
  }

  /** Subscribes ``fn`` to events of ``type`` with their detail; returns the function that unsubscribes it. */
  on(type, fn) {
    const listener = (event) => fn(event.detail);
    this.addEventListener(type, listener);
    return () => this.removeEventListener(type, listener);
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  _setState(state) {
    this.state = state;
    this._emit("state", { type: "state", state });
  }

  /** Places the call: microphone, GET /ice, POST /offer. Rejects (with a ParleyError) when it cannot. */
  async start() {
    if (this._started) throw new ParleyError("this call was started already");
    this._started = true;
    globalThis.addEventListener?.("pagehide", this._leaving);
    this._setState("connecting");
    // Each step goes on only while the call is not ended (end() or close() while it connects).
    const going = (value) => {
      if (this.ended) throw new ParleyError("the call was ended before it connected");
      return value;
    };
    try {
      this.microphone = going(await this._openMicrophone(this.options.audio));
      this._emit("microphone", { stream: this.microphone });
      const ice = going(await answerOf(await this._authorized("ice")));
      this.iceServers = ice.iceServers || [];
      const offer = going(await offerFrom(this._newPeer()));
      const who = { profile: this.options.profile, display_name: this.options.displayName }; // for the record
      if (this.options.record) who.record = true; // the person's consent to this call's recording
      const body = JSON.stringify({ ...offer, mode: this.mode, language: this.language, ...who });
      const headers = { "Content-Type": "application/json" };
      const answer = going(await answerOf(await this._authorized("offer", { method: "POST", headers, body })));
      this.sessionId = answer.session_id;
      this._secret = answer.reconnect_secret || null;
      await this.pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
    } catch (err) {
      this._teardown(); // (again, if it ended meanwhile: what opened since is closed too)
      if (this.ended) throw new ParleyError("the call was ended before it connected");
      this.state = "idle";
      throw err instanceof ParleyError ? err : new ParleyError(err.message || String(err));
    }
    return this;
  }

  async _openMicrophone(audio) {
    if (audio instanceof MediaStream) return audio;
    const constraints = { audio: { ...MIC_CONSTRAINTS, ...(typeof audio === "object" ? audio : {}) } };
    const stream = await navigator.mediaDevices.getUserMedia(constraints);
    this._ownsMic = true;
    return stream;
  }

  async _tokenValue() {
    if (this._token === null) {
      const { token } = this.options;
      this._token = (typeof token === "function" ? await token() : token) || "";
    }
    return this._token;
  }

  // A request with the call's token; a 401 asks options.askToken (the page's prompt) once for another.
  async _authorized(path, init = {}) {
    const send = async () => {
      const token = await this._tokenValue();
      const headers = { ...(init.headers || {}), ...(token ? { Authorization: "Bearer " + token } : {}) };
      return fetch(new URL(path, this.url), { ...init, headers });
    };
    const response = await send();
    if (response.status !== 401 || !this.options.askToken) return response;
    this._token = (await this.options.askToken()) || "";
    return send();
  }

  // A connection for the call (its first, or one that takes it up again): the microphone, the events channel
  // and the bot's audio.
  _newPeer() {
    const peer = new RTCPeerConnection({ iceServers: this.iceServers });
    const channel = peer.createDataChannel("events", { ordered: true });
    this.pc = peer;
    this.channel = channel;
    channel.onmessage = (msg) => {
      if (this.pc !== peer) return;
      let message;
      try {
        message = JSON.parse(msg.data);
      } catch {
        return;
      }
      this.receive(message);
    };
    channel.onopen = () => this._emit("open", {});
    channel.onclose = () => this._lost(peer); // closed with no "ended" first: lost
    this.microphone.getAudioTracks().forEach((track) => peer.addTrack(track, this.microphone));
    peer.ontrack = (e) => {
      this.remoteStream = e.streams[0] || new MediaStream([e.track]);
      if (this.audioElement) this.audioElement.srcObject = this.remoteStream;
      this._emit("track", { stream: this.remoteStream });
    };
    this._watch(peer);
    return peer;
  }

  /** Handles one server message as if it came on the events channel (the channel's handler; tests use it). */
  receive(message) {
    if (!message || typeof message.type !== "string" || this.ended) return;
    if (message.type === "ready") {
      this.mode = message.mode || this.mode;
      this.language = message.language || this.language;
    } else if (message.type === "state") {
      this.state = message.state;
    } else if (message.type === "controls") {
      for (const key of Object.keys(this.controls)) if (key in message) this.controls[key] = message[key];
      this._applyMicrophone();
    }
    this._emit("message", message);
    if (message.type === "ended") this._finish(message);
    else this._emit(message.type, message);
  }

  // Lost: the connection failed, stayed "disconnected", its audio stopped, or its channel closed with no "ended".
  _watch(peer) {
    peer.onconnectionstatechange = () => {
      clearTimeout(this._lostTimer);
      if (peer.connectionState === "connected") this._connected(peer);
      if (peer.connectionState === "failed") this._lost(peer);
      else if (peer.connectionState === "disconnected") {
        this._lostTimer = setTimeout(() => this._lost(peer), LOST_AFTER_MS);
      }
    };
    let received = -1;
    let since = performance.now();
    const timer = setInterval(async () => {
      if (this.pc !== peer) return clearInterval(timer);
      if (peer.connectionState !== "connected") {
        since = performance.now();
        return;
      }
      let packets = 0;
      (await peer.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === "audio") packets += r.packetsReceived;
      });
      if (packets !== received) {
        received = packets;
        since = performance.now();
      } else if (performance.now() - since >= LOST_AFTER_MS) this._lost(peer);
    }, STATS_EVERY_MS);
  }

  _connected(peer) {
    if (this.pc !== peer) return;
    if (this._resumingSince) {
      this._resumingSince = 0;
      this._setState("listening"); // the reply in progress was cut when the line dropped: the person speaks next
      this._emit("reconnected", { sessionId: this.sessionId });
    } else if (!this.connectedAt) {
      this.connectedAt = performance.now();
      this._emit("connected", { sessionId: this.sessionId });
    }
  }

  // The connection ``peer`` is gone mid-call: the same call is taken up again on a new connection (POST /resume)
  // if it can be; otherwise the call ends, "lost".
  _lost(peer) {
    if (this.pc !== peer || this.ended) return; // an earlier connection's late news
    if (!this._secret || !this.connectedAt || this.options.reconnect === false) {
      this._finish({ type: "ended", reason: "lost", local: true });
      return;
    }
    if (this._resumingSince) return;
    this._resumingSince = performance.now();
    peer.close();
    this._setState("reconnecting");
    this._resume();
  }

  async _resume() {
    if (!this._resumingSince || this.ended) return;
    let status = 0;
    try {
      if (this.pc) this.pc.close(); // the connection lost, or the last attempt's
      const offer = await offerFrom(this._newPeer());
      const headers = { "Content-Type": "application/json", [SESSION_HEADER]: this.sessionId };
      const body = JSON.stringify({ ...offer, session_id: this.sessionId, reconnect_secret: this._secret });
      const response = await fetch(new URL("resume", this.url), { method: "POST", headers, body });
      status = response.status;
      const answer = await response.json();
      if (response.ok && this._resumingSince && !this.ended) {
        await this.pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
        return; // done once it connects (_connected)
      }
    } catch (err) {
      console.warn("parley: reconnecting failed:", err);
    }
    if (!this._resumingSince || this.ended) return;
    const gone = status >= 400 && status < 500; // the call has ended, or is not this client's
    if (gone || performance.now() - this._resumingSince > RESUME_FOR_MS) {
      this._finish({ type: "ended", reason: "lost", local: true });
      return;
    }
    this._resumeTimer = setTimeout(() => this._resume(), RESUME_EVERY_MS);
  }

  /** Sends one protocol message on the events channel; false when the channel is not open. */
  send(message) {
    if (!this.channel || this.channel.readyState !== "open" || this.ended) return false;
    this.channel.send(JSON.stringify(message));
    this._emit("sent", message);
    return true;
  }

  /** Typed input, answered like speech; it interrupts the bot if it is speaking. */
  sendText(text) {
    return this.send({ type: "text", text });
  }

  /** Another mode or language mid-call: the server starts over (`ready`, then a new greeting). */
  setMode(mode, language) {
    return this.send(language ? { type: "mode", mode, language } : { type: "mode", mode });
  }

  reset() {
    return this.send({ type: "reset" });
  }

  requestScorecard() {
    return this.send({ type: "scorecard" });
  }

  // The controls change at once here (and the microphone with them); the server's `controls` event that answers
  // is the truth, and sets them right.
  _control(fields, message) {
    if (!this.send(message)) return false;
    Object.assign(this.controls, fields);
    this._applyMicrophone();
    return true;
  }

  /** Mutes (or unmutes) the microphone: the server is told, and the sound is not sent either. */
  mute(muted = true) {
    return this._control({ muted }, { type: "mute", muted });
  }

  /** "Give me a moment": the bot stays quiet and waits, however long the person's silence. */
  hold(held = true) {
    return this._control({ held }, { type: "hold", held });
  }

  /** Push-to-talk on or off: while on, the server hears the person only between `talk(true)` and `talk(false)`. */
  pushToTalk(enabled = true) {
    return this._control({ push_to_talk: enabled, talking: false }, { type: "push_to_talk", enabled });
  }

  /** The talk button pressed or let go (push-to-talk); a repeat of the same sends nothing. */
  talk(pressed) {
    if (!this.controls.push_to_talk || this.controls.talking === pressed) return false;
    return this._control({ talking: pressed }, { type: "talk", pressed });
  }

  // The microphone sends sound only when not muted and, with push-to-talk, only while the button is down.
  _applyMicrophone() {
    const c = this.controls;
    const live = !c.muted && (!c.push_to_talk || c.talking);
    if (this.microphone) this.microphone.getAudioTracks().forEach((t) => { t.enabled = live; });
  }

  /** Another microphone mid-call (a deviceId, constraints or a stream): the sender's track is replaced. */
  async switchMicrophone(device) {
    if (!this.pc || this.ended) throw new ParleyError("no call in progress");
    let stream = device instanceof MediaStream ? device : null;
    if (!stream) {
      const chosen = typeof device === "string" ? (device ? { deviceId: { exact: device } } : {}) : device || {};
      stream = await navigator.mediaDevices.getUserMedia({ audio: { ...MIC_CONSTRAINTS, ...chosen } });
    }
    const sender = this.pc && this.pc.getSenders().find((s) => s.track && s.track.kind === "audio");
    if (!sender || this.ended) {
      if (stream !== device) stream.getTracks().forEach((t) => t.stop());
      throw new ParleyError("no call in progress");
    }
    await sender.replaceTrack(stream.getAudioTracks()[0]);
    if (this._ownsMic) this.microphone.getTracks().forEach((t) => t.stop());
    this._ownsMic = stream !== device;
    this.microphone = stream;
    this._applyMicrophone();
    this._emit("microphone", { stream });
    return stream;
  }

  /** Hangs up: the server sends what it owes (a scorecard), then `ended`; after 3 s without it, the call ends. */
  end() {
    if (this.ended) return Promise.resolve();
    const over = new Promise((resolve) => this.addEventListener("ended", () => resolve(), { once: true }));
    if (this.send({ type: "end" })) {
      this._endTimer = setTimeout(() => this._finish({ type: "ended", reason: "requested", local: true }), END_WAIT_MS);
    } else {
      this._finish({ type: "ended", reason: "requested", local: true });
    }
    return over;
  }

  /**
   * Closes the call here at once, without waiting for the server; `ended` follows. The server is told (`end`) so
   * that it frees the call now: a line that just closes is one it keeps the call for, for a while, to come back.
   */
  close() {
    this.send({ type: "end" });
    this._finish({ type: "ended", reason: "requested", local: true });
  }

  _teardown() {
    globalThis.removeEventListener?.("pagehide", this._leaving);
    clearTimeout(this._lostTimer);
    clearTimeout(this._resumeTimer);
    clearTimeout(this._endTimer);
    this._resumingSince = 0;
    if (this.pc) this.pc.close();
    this.pc = null;
    this.channel = null;
    if (this.microphone && this._ownsMic) this.microphone.getTracks().forEach((t) => t.stop());
    this.microphone = null;
    if (this.audioElement) this.audioElement.srcObject = null;
  }

  // The call is over, once: everything is closed, then `ended` says why.
  _finish(message) {
    if (this.ended) return;
    this.ended = true;
    this._teardown();
    this.state = "ended";
    this._emit("state", { type: "state", state: "ended" });
    this._emit("ended", message);
  }
}

/**
 * Places a call to the Parley server at ``options.url`` and resolves to it once the server has answered.
 * @param {import("./parley").ConnectOptions} options
 * @returns {Promise<Call>}
 */
export async function connect(options = {}) {
  const call = new Call(options);
  for (const [type, fn] of Object.entries(options.on || {})) call.on(type, fn);
  return call.start();
}
