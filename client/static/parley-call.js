// <parley-call>: a Parley call in one element, built on parley.js. Attributes: url (the Parley server), token or
// token-url (an endpoint of the embedding app's own backend that answers a POST with {"token": ...}), mode,
// language. Every event of the call is dispatched on the element as "parley-<type>" (parley-transcript,
// parley-state, parley-ended, ...; they bubble out of the shadow DOM), with the same detail.
import { Call, ParleyError } from "./parley.js";
import { CALL_AGAIN, ENDED, Transcript, showScorecard } from "./transcript.js";

const LABELS = { idle: "Not in a call", connecting: "Connecting…", listening: "Listening", thinking: "Thinking…",
  speaking: "Speaking", reconnecting: "Reconnecting…", ended: "Not in a call" };
const EVENTS = ["message", "ready", "state", "speech", "transcript", "caption", "interrupted", "metrics", "error",
  "scorecard", "ended", "controls", "open", "connected", "reconnected", "track", "microphone", "sent"];

const TEMPLATE = `
<style>
  :host { display: block; font: inherit; color: var(--parley-text, CanvasText); max-width: 40rem;
    --go: var(--parley-go, #1a6b43); --stop: var(--parley-stop, #b3261e); }
  @media (prefers-color-scheme: dark) {
    :host { --go: var(--parley-go, #5fd39a); --stop: var(--parley-stop, #ff8a80); }
  }
  [hidden] { display: none !important; }
  .bar { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
  button, input { font: inherit; min-height: 44px; min-width: 44px; padding: 0 0.9rem; border-radius: 0.5rem;
    border: 1px solid color-mix(in srgb, currentColor 40%, transparent); background: Canvas; color: CanvasText; }
  button:focus-visible, input:focus-visible { outline: 3px solid Highlight; outline-offset: 2px; }
  #call { background: var(--go); color: Canvas; border: none; font-weight: 600; }
  #call.active { background: var(--stop); }
  button[aria-pressed="true"] { background: CanvasText; color: Canvas; }
  button:disabled, input:disabled { opacity: 0.5; }
  form { display: flex; gap: 0.5rem; margin: 0.5rem 0; }
  form input { flex: 1; }
  ol { padding-left: 1.2rem; }
  li.interrupted .words::after { content: " …"; }
  .error { color: var(--stop); }
</style>
<div class="bar">
  <button id="call" type="button" part="call">Start call</button>
  <button id="mute" type="button" aria-pressed="false" disabled>Mute</button>
  <span id="state" role="status" aria-live="polite">Not in a call</span>
</div>
<p id="error" class="error" role="alert" hidden></p>
<form id="typed" autocomplete="off">
  <input id="text" type="text" maxlength="2000" placeholder="Or type here, then Enter" aria-label="Type a message"
    disabled>
  <button id="send" type="submit" disabled>Send</button>
</form>
<ol id="transcript" aria-live="polite" aria-label="Transcript" part="transcript"></ol>
<section id="scorecard" aria-live="polite" hidden part="scorecard">
  <h2>Scorecard</h2>
  <p id="summary"></p>
  <ol id="questions"></ol>
  <h3>Study next</h3>
  <ul id="study"></ul>
</section>
<audio id="remote" autoplay></audio>
`;

/** The `<parley-call>` element. Its `call` property is the call in progress (a parley.js `Call`), or null. */
export class ParleyCallElement extends HTMLElement {
  static observedAttributes = ["mode", "language"];

  constructor() {
    super();
    this.attachShadow({ mode: "open" }).innerHTML = TEMPLATE;
    /** @type {Call | null} */
    this.call = null;
    this._starting = false;
    this._attempts = 0; // calls started; start() checks it to notice a hang-up while it waits
    const $ = (id) => this.shadowRoot.getElementById(id);
    this._ui = { call: $("call"), mute: $("mute"), state: $("state"), error: $("error"), text: $("text"),
      send: $("send"), transcript: $("transcript"), scorecard: $("scorecard"), remote: $("remote"),
      card: { summary: $("summary"), questions: $("questions"), study: $("study") } };
    this._transcript = new Transcript(this._ui.transcript);
    this._ui.call.addEventListener("click", () => {
      if (this.call || this._starting) this.end();
      else this.start().catch(() => {}); // shown in the element, and as parley-failed
    });
    this._ui.mute.addEventListener("click", () => {
      if (this.call) this.call.mute(!this.call.controls.muted);
      this._showControls();
    });
    $("typed").addEventListener("submit", (e) => {
      e.preventDefault();
      const text = this._ui.text.value.trim();
      if (text && this.sendText(text)) this._ui.text.value = "";
    });
  }

  get mode() {
    return this.getAttribute("mode") || "chat";
  }

  get language() {
    return this.getAttribute("language") || "en";
  }

  // A new mode or language mid-call: the server starts over in it.
  attributeChangedCallback(name, before, after) {
    if (this.call && before !== after) this.call.setMode(this.mode, this.language);
  }

  disconnectedCallback() {
    if (this.call) this.call.close();
  }

  // The call token: the token attribute, or one the app's backend mints (POST token-url) for each call.
  async _token() {
    const tokenUrl = this.getAttribute("token-url");
    if (!tokenUrl) return { token: this.getAttribute("token") || "", url: null };
    const response = await fetch(tokenUrl, { method: "POST", headers: { Accept: "application/json" } });
    const body = await response.json().catch(() => ({}));
    if (!response.ok || !body.token) throw new ParleyError(body.error || `no call token (${response.status})`);
    return { token: body.token, url: body.url || null };
  }

  /** Places a call with the element's attributes; resolves to the call (null when hung up meanwhile). */
  async start() {
    if (this.call || this._starting) return this.call;
    const attempt = ++this._attempts; // a hang-up (_over) moves on to the next: this one then stays quiet
    this._starting = true;
    this._showError("");
    this._ui.scorecard.hidden = true;
    this._transcript.clear();
    this._transcript.language = this.language;
    this._ui.call.textContent = "End call";
    this._ui.call.classList.add("active");
    this._setState("connecting");
    try {
      const { token, url } = await this._token();
      if (attempt !== this._attempts) return null; // hung up while the token was on its way
      const call = new Call({ url: this.getAttribute("url") || url || ".", token, mode: this.mode,
        language: this.language, audioElement: this._ui.remote });
      this.call = call;
      this._follow(call);
      await call.start();
      return call;
    } catch (err) {
      if (attempt !== this._attempts) throw err; // hung up while connecting: nothing to complain about
      this._over();
      this._showError(err.message || String(err));
      this._dispatch("failed", { message: err.message });
      throw err;
    } finally {
      if (attempt === this._attempts) this._starting = false;
    }
  }

  /** Hangs up (the server's scorecard, if any, comes first). */
  end() {
    if (!this.call) {
      if (this._starting) this._over(); // before the call existed: it is not placed
      return Promise.resolve();
    }
    this._ui.call.disabled = true;
    return this.call.end();
  }

  /** Typed input, answered like speech. */
  sendText(text) {
    return Boolean(this.call && this.call.sendText(text));
  }

  _follow(call) {
    for (const type of EVENTS) {
      call.on(type, (detail) => {
        if (this.call === call) this._dispatch(type, detail);
      });
    }
    const mine = (fn) => (detail) => { if (this.call === call) fn(detail); };
    this._transcript.follow(call);
    call.on("state", mine((e) => this._setState(e.state)));
    call.on("open", mine(() => this._enable(true)));
    call.on("controls", mine(() => this._showControls()));
    call.on("error", mine((e) => this._showError(e.message)));
    call.on("scorecard", mine((card) => {
      showScorecard(card, this._ui.card);
      this._ui.scorecard.hidden = false;
    }));
    call.on("ended", mine((e) => {
      const said = ENDED[e.reason];
      this._showError(said ? said + (CALL_AGAIN.has(e.reason) ? " Start a new call to go on." : "") : "");
      this._over();
    }));
  }

  // Out of the shadow DOM to the page: bubbling and composed.
  _dispatch(type, detail) {
    this.dispatchEvent(new CustomEvent("parley-" + type, { detail, bubbles: true, composed: true }));
  }

  _over() {
    const call = this.call;
    this.call = null;
    this._attempts += 1;
    this._starting = false;
    if (call) call.close();
    this._enable(false);
    this._showControls();
    this._ui.call.textContent = "Start call";
    this._ui.call.classList.remove("active");
    this._ui.call.disabled = false;
    this._setState("idle");
  }

  _setState(state) {
    this._ui.state.dataset.state = state;
    this._ui.state.textContent = LABELS[state] || state;
    if (state === "reconnecting") this._enable(false);
  }

  _enable(on) {
    for (const el of [this._ui.mute, this._ui.text, this._ui.send]) el.disabled = !on;
  }

  _showControls() {
    const muted = Boolean(this.call && this.call.controls.muted);
    this._ui.mute.setAttribute("aria-pressed", String(muted)); // the label stays "Mute": pressed says it is on
  }

  _showError(message) {
    this._ui.error.textContent = message;
    this._ui.error.hidden = !message;
  }
}

if (!customElements.get("parley-call")) customElements.define("parley-call", ParleyCallElement);
