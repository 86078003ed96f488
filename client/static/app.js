// The call page: one WebRTC call to the Parley server, hands-free. The call itself (signalling, events,
// reconnecting, controls) is parley.js's, the same module apps embed; this file is the page around it.
// Sound, Line and Devices are classic scripts loaded before it (sound.js, line.js, devices.js).
import { Call, newProfileId } from "./parley.js";
import { CALL_AGAIN, DIRECTIONS, ENDED, Transcript, showScorecard } from "./transcript.js";
import { bindControls } from "./controls.js";

const $ = (id) => document.getElementById(id);
const STATE_LABELS = { idle: "Not in a call", connecting: "Connecting…", listening: "Listening",
  thinking: "Thinking…", speaking: "Speaking", reconnecting: "Reconnecting…" };

let call = null; // the call in progress, or null
let starting = false;
let stopMicMeter = null;
let stopBotMeter = null;
let clockTimer = null;
let lastCall = null; // the mode and language of the call placed last: "Call again" places the same
const transcript = new Transcript($("transcript"));
// The server's token (PARLEY_TOKEN), or a call token an app minted for this call: from #token=... in the URL.
let token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
// The history page needs the same token: its link carries it (in the fragment, never sent to the server).
function linkHistory() {
  if (token) $("history-link").hash = "token=" + encodeURIComponent(token);
}
linkHistory();

// For tests and embedding pages: every message the page sent, the tones it played, the microphone's state, and
// the call's connection and channel (window.pc, window.channel) and a way to inject a server message (onEvent).
window.parleyDebug = {
  sent: [],
  tones: [],
  micEnabled: () => (call && call.microphone ? call.microphone.getAudioTracks().map((t) => t.enabled) : []),
};
Object.defineProperty(window, "pc", { get: () => (call ? call.pc : null), configurable: true });
Object.defineProperty(window, "channel", { get: () => (call ? call.channel : null), configurable: true });
window.onEvent = (message) => { if (call) call.receive(message); };

const controls = bindControls(() => call, showError);

function setState(state) {
  $("state").dataset.state = state;
  $("state").textContent = STATE_LABELS[state] || state;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

$("captions").addEventListener("change", () => { $("transcript").hidden = !$("captions").checked; });

// The call timer, mm:ss from the moment the call connected.
function showClock() {
  const seconds = Math.floor((performance.now() - call.connectedAt) / 1000);
  const mm = String(Math.floor(seconds / 60)).padStart(2, "0");
  $("timer").textContent = `${mm}:${String(seconds % 60).padStart(2, "0")}`;
}

// Connected: the tone, the timer and the line's quality start.
function onConnected(current) {
  Sound.tone("connected");
  showClock();
  $("timer").hidden = false;
  clockTimer = setInterval(() => { if (call === current) showClock(); }, 1000);
  watchLine(current);
}

function watchLine(current) {
  const peer = current.pc;
  Line.watch(peer, () => call === current && current.pc === peer);
}

// Typed input: answered like speech, and it interrupts the bot if it is speaking.
function setTyping(enabled) {
  $("text").disabled = !enabled;
  $("send").disabled = !enabled;
}

// The page follows every event of ``current``; it stops following once another call is the page's.
function follow(current) {
  const mine = (fn) => (detail) => { if (call === current) fn(detail); };
  transcript.follow(current);
  current.on("state", mine((e) => {
    setState(e.state === "ended" ? "idle" : e.state);
    if (e.state === "reconnecting") setTyping(false);
  }));
  current.on("message", mine((message) => {
    if (message.type === "ready") window.parleySessionId = message.session_id;
    // Tests and embedding pages can follow every event the server sent.
    window.dispatchEvent(new CustomEvent("parley-event", { detail: message }));
  }));
  current.on("sent", (message) => window.parleyDebug.sent.push(message));
  current.on("open", mine(() => { setTyping(true); controls.enable(true); }));
  current.on("controls", mine(() => controls.show()));
  current.on("error", mine((e) => showError(e.message)));
  current.on("scorecard", mine((card) => {
    showScorecard(card, { summary: $("score-summary"), questions: $("score-questions"), study: $("score-study") });
    $("scorecard").hidden = false;
  }));
  current.on("connected", mine(() => onConnected(current)));
  current.on("reconnected", mine(() => { showError(""); watchLine(current); }));
  current.on("microphone", mine(({ stream }) => {
    if (stopMicMeter) stopMicMeter();
    stopMicMeter = Sound.meter(stream, $("level"));
    Devices.refresh(); // the devices' names are readable now
    controls.show();
  }));
  current.on("track", mine(({ stream }) => {
    Devices.applySpeaker($("remote"));
    if (stopBotMeter) stopBotMeter();
    stopBotMeter = Sound.meter(stream, $("bot-level"));
  }));
  current.on("ended", mine((e) => {
    if (ENDED[e.reason]) showError(ENDED[e.reason]);
    endCall();
    if (CALL_AGAIN.has(e.reason)) $("again").hidden = false;
  }));
}

// The person's profile between visits, without an account: a random id in this browser, their key to their records.
function profileId() {
  try {
    let id = localStorage.getItem("parley-profile");
    if (!id) localStorage.setItem("parley-profile", (id = newProfileId()));
    return id;
  } catch {
    return undefined; // storage blocked (a framed page without third-party storage): the call keeps no record key
  }
}

// The name the person gave on the history page (history.js), recorded with their calls; none by default.
function displayName() {
  try {
    return localStorage.getItem("parley-name") || undefined;
  } catch {
    return undefined;
  }
}

async function startCall() {
  if (starting || call) return; // a double click must not place two calls
  starting = true;
  showError("");
  $("again").hidden = true;
  lastCall = { mode: $("mode").value, language: $("language").value };
  transcript.language = lastCall.language;
  Sound.audio(); // made within the click, so the browser lets the tones and meters run
  $("scorecard").hidden = true;
  $("call").textContent = "End call";
  $("call").classList.add("active");
  const current = new Call({
    url: ".", token, ...lastCall, audio: Devices.constraints().audio, audioElement: $("remote"),
    profile: profileId(), displayName: displayName(),
    record: !$("record-choice").hidden && $("record").checked,
    // The server wants a token: the page's URL fragment (#token=...) did not have the right one.
    askToken: () => {
      token = window.prompt("This server needs an access token:") || "";
      linkHistory();
      return token;
    },
  });
  call = current;
  follow(current);
  try {
    await current.start();
    window.parleySessionId = current.sessionId;
  } catch (err) {
    if (!current.ended) showError(err.message || String(err)); // (not when hung up while connecting)
    if (call === current) endCall();
  } finally {
    starting = false;
  }
}

function endCall() {
  const current = call;
  call = null;
  starting = false; // a call hung up while connecting: its start() ends quietly (parley.js), Start works now
  if (current && current.connectedAt) Sound.tone("ended");
  if (current) current.close();
  clearInterval(clockTimer);
  $("timer").hidden = true;
  Line.hide();
  if (stopMicMeter) stopMicMeter();
  if (stopBotMeter) stopBotMeter();
  stopMicMeter = stopBotMeter = null;
  controls.reset();
  $("remote").srcObject = null;
  transcript.live = null;
  setTyping(false);
  $("call").textContent = "Start call";
  $("call").classList.remove("active");
  $("call").disabled = false;
  setState("idle");
}

// Hanging up: the server is asked to end the call, so it sends what it owes first (an interview's scorecard)
// and then "ended"; if that does not come soon, the call ends anyway (parley.js).
function hangUp() {
  $("call").disabled = true;
  call.end();
}

$("call").addEventListener("click", () => (call ? hangUp() : startCall()));

$("again").addEventListener("click", () => {
  if (call || starting) return;
  if (lastCall) {
    $("mode").value = lastCall.mode;
    $("language").value = lastCall.language;
  }
  startCall();
});

$("typed").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (text && call && call.sendText(text)) $("text").value = "";
});

// Switching mode or language mid-call: the server starts over in the new persona.
function sendMode() {
  if (call) call.setMode($("mode").value, $("language").value);
}
$("mode").addEventListener("change", sendMode);
$("language").addEventListener("change", sendMode);

// The language picker lists the server's languages (GET /languages), each in its own name and direction. Until
// they come (or if they never do) English, the server's default, is the one choice: a call still works.
async function loadLanguages() {
  try {
    const response = await fetch("languages");
    if (!response.ok) throw new Error("GET /languages answered " + response.status);
    const { languages, default: fallback, recording } = await response.json();
    $("record-choice").hidden = !recording;
    const picker = $("language");
    const chosen = picker.value;
    picker.replaceChildren(...languages.map((language) => {
      const option = new Option(language.native_name, language.code);
      option.lang = language.code;
      option.dir = language.direction;
      option.title = language.name;
      DIRECTIONS[language.code] = language.direction;
      return option;
    }));
    picker.value = languages.some((language) => language.code === chosen) ? chosen : fallback;
  } catch (err) {
    console.warn("the language list did not load; English only:", err);
  }
}
loadLanguages();
