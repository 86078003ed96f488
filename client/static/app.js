// The call page: one WebRTC call to the Parley server, hands-free.
"use strict";

const $ = (id) => document.getElementById(id);
const STATE_LABELS = { idle: "Not in a call", connecting: "Connecting…", listening: "Listening",
  thinking: "Thinking…", speaking: "Speaking", reconnecting: "Reconnecting…" };

let pc = null;
let channel = null;
let micStream = null;
let stopMicMeter = null;
let stopBotMeter = null;
let starting = false;
let connectedAt = 0; // performance.now() when the call connected; 0 when not connected
let clockTimer = null;
let callLanguage = "en"; // the language of the call's captions: the offer's, then each "ready"'s
const DIRECTIONS = { ar: "rtl" }; // filled from GET /languages; Arabic's known before it answers
let lastCall = null; // the mode and language of the call placed last: "Call again" places the same
let lostTimer = null;
// The server sends audio every 20 ms for the whole call, silence included: none for this long, or a connection
// "disconnected" this long, means the server is gone (crashed, or its network). Chromium took about 6 s to say
// "disconnected" after a SIGKILL here, and ICE about 30 s to say "failed". A brief network blip recovers within it.
const LOST_AFTER_MS = 3000;
const STATS_EVERY_MS = 500;
// The server's token (PARLEY_TOKEN), or a call token an app minted for this call: from #token=... in the URL.
let token = new URLSearchParams(location.hash.slice(1)).get("token") || "";

// For tests and embedding pages: every message the page sent, the tones it played, the microphone's state.
window.parleyDebug = {
  sent: [],
  tones: [],
  micEnabled: () => (micStream ? micStream.getAudioTracks().map((t) => t.enabled) : []),
};

function send(message) {
  if (!channel || channel.readyState !== "open") return false;
  channel.send(JSON.stringify(message));
  window.parleyDebug.sent.push(message);
  return true;
}

function authorized(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = "Bearer " + token;
  return fetch(path, { ...options, headers });
}

// /ice needs the same token as /offer: ask for one when the server wants it and the URL had none that works.
async function fetchIce() {
  let response = await authorized("ice");
  if (response.status === 401) {
    token = window.prompt("This server needs an access token:") || "";
    response = await authorized("ice");
  }
  const ice = await response.json();
  if (!response.ok) throw new Error(ice.error || "the server refused the call");
  return ice;
}

function postOffer(body) {
  return authorized("offer", { method: "POST", headers: { "Content-Type": "application/json" }, body });
}

function setState(state) {
  $("state").dataset.state = state;
  $("state").textContent = STATE_LABELS[state] || state;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

// Captions: the person's lines, and the bot's as it speaks (one "caption" event per sentence as it starts
// playing), settled by the final transcript, which holds what was actually heard.
let liveLine = null;

// A user's line that "continues" the turn before replaces it and the bot's reply cut in between.
function takeBackLastTurn() {
  const lines = Array.from($("transcript").children);
  const last = lines.map((line) => line.classList.contains("user")).lastIndexOf(true);
  if (last >= 0) lines.slice(last).forEach((line) => line.remove());
  liveLine = null;
}

// A caption line in the call's language and its direction (Arabic right to left); the "You:"/"Bot:" label is
// the page's English, isolated so it does not reorder the words around it.
function captionLine(role) {
  const item = document.createElement("li");
  item.lang = callLanguage;
  item.dir = DIRECTIONS[callLanguage] || "auto";
  const who = document.createElement("bdi");
  who.lang = "en";
  who.textContent = role === "user" ? "You:" : "Bot:";
  const words = document.createElement("span");
  words.className = "words";
  item.append(who, " ", words);
  return item;
}

function addLine(role, text, interrupted, continues) {
  if (continues) takeBackLastTurn();
  const item = role === "assistant" && liveLine ? liveLine : captionLine(role);
  if (item === liveLine) liveLine = null;
  item.className = role + (interrupted ? " interrupted" : "");
  item.querySelector(".words").textContent = text;
  $("transcript").appendChild(item);
}

function addCaption(text) {
  if (!liveLine) {
    liveLine = captionLine("assistant");
    liveLine.className = "assistant live";
    $("transcript").appendChild(liveLine);
  }
  const words = liveLine.querySelector(".words");
  words.textContent = words.textContent ? words.textContent + " " + text : text;
}

$("captions").addEventListener("change", () => { $("transcript").hidden = !$("captions").checked; });

const VERDICTS = { correct: "Correct", partly: "Partly right", wrong: "Not right", no_answer: "No answer",
  skipped: "Skipped", unanswered: "Not answered" };
const ENDED = { idle: "The call ended: nothing was said for a while.", max_duration: "The call reached its time limit.",
  peer_gone: "The call was lost.", shutdown: "The server ended the call to restart.",
  media_failed: "The call was lost." };
const CALL_AGAIN = new Set(["peer_gone", "shutdown", "media_failed"]); // not the person's doing: offer a new call

function listItem(text, className) {
  const item = document.createElement("li");
  item.textContent = text;
  if (className) item.className = className;
  return item;
}

// The interview's scorecard: every question asked, what each answer covered and missed, what to study next.
function showScorecard(card) {
  const t = card.totals || {};
  $("score-summary").textContent = `${card.asked} question${card.asked === 1 ? "" : "s"} asked, ` +
    `${card.answered} answered: ${t.correct || 0} correct, ${t.partly || 0} partly right, ` +
    `${t.wrong || 0} not right, ${t.no_answer || 0} without an answer, ${t.skipped || 0} skipped.`;
  const questions = $("score-questions");
  questions.replaceChildren();
  for (const q of card.questions) {
    const item = listItem("", "verdict-" + q.verdict);
    const title = document.createElement("p");
    title.className = "question";
    title.textContent = `${q.question} (${q.topic.replace("_", " ")}, ${q.level}): ${VERDICTS[q.verdict] || q.verdict}`;
    item.appendChild(title);
    const points = document.createElement("ul");
    q.covered.forEach((p) => points.appendChild(listItem("Covered: " + p, "covered")));
    if (q.verdict !== "unanswered") q.missed.forEach((p) => points.appendChild(listItem("Missed: " + p, "missed")));
    item.appendChild(points);
    questions.appendChild(item);
  }
  $("score-study").replaceChildren(...card.study_next.map((s) => listItem(s)));
  $("scorecard").hidden = false;
}

function onEvent(event) {
  switch (event.type) {
    case "state": setState(event.state); break;
    case "transcript": addLine(event.role, event.text, event.interrupted, event.continues); break;
    case "caption": addCaption(event.text); break;
    case "ready": liveLine = null; callLanguage = event.language || callLanguage; break;
    case "controls": Controls.reflect(event); break;
    case "error": showError(event.message); break;
    case "scorecard": showScorecard(event); break;
    case "ended":
      if (ENDED[event.reason]) showError(ENDED[event.reason]);
      endCall();
      if (CALL_AGAIN.has(event.reason)) $("again").hidden = false;
      break;
    default: break;
  }
  // Tests and embedding pages can follow every event.
  window.dispatchEvent(new CustomEvent("parley-event", { detail: event }));
}

// The call timer, mm:ss from the moment the call connected.
function showClock() {
  const seconds = Math.floor((performance.now() - connectedAt) / 1000);
  const mm = String(Math.floor(seconds / 60)).padStart(2, "0");
  $("timer").textContent = `${mm}:${String(seconds % 60).padStart(2, "0")}`;
}

// Connected: the tone, the timer and the line's quality start.
function onConnected(peer) {
  if (pc !== peer || connectedAt) return;
  connectedAt = performance.now();
  Sound.tone("connected");
  showClock();
  $("timer").hidden = false;
  clockTimer = setInterval(showClock, 1000);
  Line.watch(peer, () => pc === peer);
}

function waitForIce(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (peer.iceGatheringState === "complete") resolve(); };
    peer.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000); // a missing STUN answer must not hold the call
  });
}

// The connection is gone mid-call (a network change, a crash): no "ended" came. The same call is taken up again
// on a new connection if it can be (reconnect.js); otherwise the page says so, and offers to call again.
function callLost(peer) {
  if (pc !== peer) return; // an earlier connection's late news
  if (Reconnect.start(peer)) return;
  giveUp();
}

function giveUp() {
  showError("The call was lost.");
  endCall();
  $("again").hidden = false;
}

function watchConnection(peer) {
  peer.onconnectionstatechange = () => {
    clearTimeout(lostTimer);
    if (peer.connectionState === "connected") { Reconnect.done(peer); onConnected(peer); }
    if (peer.connectionState === "failed") callLost(peer);
    else if (peer.connectionState === "disconnected") lostTimer = setTimeout(() => callLost(peer), LOST_AFTER_MS);
  };
  let received = -1;
  let since = performance.now();
  const timer = setInterval(async () => {
    if (pc !== peer) { clearInterval(timer); return; }
    if (peer.connectionState !== "connected") { since = performance.now(); return; }
    let packets = 0;
    (await peer.getStats()).forEach((r) => {
      if (r.type === "inbound-rtp" && r.kind === "audio") packets += r.packetsReceived;
    });
    if (packets !== received) { received = packets; since = performance.now(); }
    else if (performance.now() - since >= LOST_AFTER_MS) callLost(peer);
  }, STATS_EVERY_MS);
}

async function startCall() {
  if (starting) return; // a double click must not place two calls
  starting = true;
  showError("");
  $("again").hidden = true;
  lastCall = { mode: $("mode").value, language: $("language").value };
  callLanguage = lastCall.language;
  Sound.audio(); // made within the click, so the browser lets the tones and meters run
  $("scorecard").hidden = true;
  setState("connecting");
  $("call").textContent = "End call";
  $("call").classList.add("active");
  try {
    micStream = await navigator.mediaDevices.getUserMedia(Devices.constraints());
    stopMicMeter = Sound.meter(micStream, $("level"));
    Devices.refresh(); // the devices' names are readable now
    const ice = await fetchIce(); // STUN/TURN for calls across NATs, with a TURN credential that expires
    Reconnect.iceServers = ice.iceServers;
    const body = JSON.stringify({ ...(await offerFrom(newPeer(ice.iceServers))),
      mode: $("mode").value, language: $("language").value });
    let response = await postOffer(body);
    if (response.status === 401) {
      // The server wants a token: the page's URL fragment (#token=...) did not have the right one.
      token = window.prompt("This server needs an access token:") || "";
      response = await postOffer(body);
    }
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || "the server refused the call");
    window.parleySessionId = answer.session_id;
    Reconnect.placed(answer.session_id, answer.reconnect_secret);
    await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
  } catch (err) {
    showError(err.message || String(err));
    endCall();
  } finally {
    starting = false;
  }
}

// A connection for the call (its first, or one that takes it up again): the microphone, the events channel and the
// bot's audio. It becomes the page's ``pc``.
function newPeer(iceServers) {
  const peer = new RTCPeerConnection({ iceServers });
  pc = peer;
  channel = peer.createDataChannel("events", { ordered: true });
  channel.onmessage = (msg) => onEvent(JSON.parse(msg.data));
  channel.onopen = () => { setTyping(true); Controls.enable(true); };
  channel.onclose = () => { setTyping(false); callLost(peer); }; // closed with no "ended" first: lost
  micStream.getAudioTracks().forEach((track) => peer.addTrack(track, micStream));
  peer.ontrack = (e) => {
    const stream = e.streams[0] || new MediaStream([e.track]);
    $("remote").srcObject = stream;
    Devices.applySpeaker($("remote"));
    if (stopBotMeter) stopBotMeter();
    stopBotMeter = Sound.meter(stream, $("bot-level"));
  };
  watchConnection(peer);
  return peer;
}

// The offer of ``peer``, with its candidates gathered.
async function offerFrom(peer) {
  await peer.setLocalDescription(await peer.createOffer());
  await waitForIce(peer);
  return { sdp: peer.localDescription.sdp, type: "offer" };
}

// Typed input: answered like speech, and it interrupts the bot if it is speaking.
function setTyping(enabled) {
  $("text").disabled = !enabled;
  $("send").disabled = !enabled;
}

$("typed").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (text && send({ type: "text", text })) $("text").value = "";
});

// Switching mode or language mid-call: the server starts over in the new persona.
function sendMode() {
  send({ type: "mode", mode: $("mode").value, language: $("language").value });
}
$("mode").addEventListener("change", sendMode);
$("language").addEventListener("change", sendMode);

// The language picker lists the server's languages (GET /languages), each in its own name and direction. Until
// they come (or if they never do) English, the server's default, is the one choice: a call still works.
async function loadLanguages() {
  try {
    const response = await fetch("languages");
    if (!response.ok) throw new Error("GET /languages answered " + response.status);
    const { languages, default: fallback } = await response.json();
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

function endCall() {
  clearTimeout(lostTimer);
  Reconnect.stop();
  if (connectedAt) Sound.tone("ended");
  connectedAt = 0;
  clearInterval(clockTimer);
  $("timer").hidden = true;
  Line.hide();
  if (stopMicMeter) stopMicMeter();
  if (stopBotMeter) stopBotMeter();
  stopMicMeter = stopBotMeter = null;
  Controls.reset();
  if (micStream) micStream.getTracks().forEach((t) => t.stop());
  micStream = null;
  if (pc) pc.close();
  pc = null;
  $("remote").srcObject = null;
  channel = null;
  liveLine = null;
  setTyping(false);
  $("call").textContent = "Start call";
  $("call").classList.remove("active");
  $("call").disabled = false;
  setState("idle");
}

// Hanging up: the server is asked to end the call, so it sends what it owes first (an interview's scorecard)
// and then "ended"; if that does not come soon, the page hangs up anyway.
function hangUp() {
  if (!channel || channel.readyState !== "open") { endCall(); return; }
  send({ type: "end" });
  $("call").disabled = true;
  setTimeout(() => { if (pc) endCall(); }, 3000);
}

$("call").addEventListener("click", () => (pc ? hangUp() : startCall()));

$("again").addEventListener("click", () => {
  if (pc || starting) return;
  if (lastCall) {
    $("mode").value = lastCall.mode;
    $("language").value = lastCall.language;
  }
  startCall();
});
