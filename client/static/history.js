// The practice history page: this browser profile's past sessions (GET /history/...), each opening to its
// transcript and scorecard, a chart of progress drawn as inline SVG (no third-party code), exports and deletes.
// The profile is the random id the call page keeps in localStorage (app.js); it is the key to these records.
import { DIRECTIONS, Transcript, showScorecard } from "./transcript.js";

const $ = (id) => document.getElementById(id);
const API = "../history"; // this page is served at /static/history.html; the API sits beside /static/
const MODES = { interview: "Mock interview", language: "Language practice", chat: "Free chat" };
const ENDS = { requested: "hung up", idle: "nothing said for a while", max_duration: "time limit reached",
  peer_gone: "call lost", lost: "call lost", media_failed: "call lost", shutdown: "server restarted",
  restarted: "switched mode or language", closed: "never connected" };
// Verdicts in the chart, best first; "unanswered" (asked as the call ended) is no answer to chart.
const VERDICTS = [["correct", "Correct"], ["partly", "Partly right"], ["wrong", "Not right"],
  ["no_answer", "No answer"], ["skipped", "Skipped"]];
const SVG = "http://www.w3.org/2000/svg";
const INTERVIEWS_CHARTED = 20; // the newest interviews whose questions are fetched for the chart

const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const languageNames = {}; // code -> native name, from GET /languages
let sessions = [];
let opened = null; // the session shown in #detail

function profile() {
  try {
    return localStorage.getItem("parley-profile");
  } catch {
    return null; // storage blocked: there is no profile, so no history
  }
}

function headers() {
  const given = { "X-Parley-Profile": profile() };
  if (token) given.Authorization = "Bearer " + token;
  return given;
}

async function api(path, method = "GET") {
  const response = await fetch(API + path, { method, headers: headers() });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.error || `${method} ${path} answered ${response.status}`);
  }
  return response;
}

function say(message) {
  $("status").textContent = message;
}

// -- words --------------------------------------------------------------------------------------------------
function when(iso) {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function seconds(session) {
  return session.ended_at ? Math.max(0, (Date.parse(session.ended_at) - Date.parse(session.started_at)) / 1000) : 0;
}

function duration(session) {
  if (!session.ended_at) return "in progress";
  const s = Math.round(seconds(session));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function topicName(topic) {
  return topic.replaceAll("_", " ");
}

function language(code) {
  return languageNames[code] || code;
}

function describe(s) {
  const ended = s.end_reason ? `, ended: ${ENDS[s.end_reason] || s.end_reason}` : "";
  return `${MODES[s.mode] || s.mode} in ${language(s.language)}, ${duration(s)}, ` +
    `${s.turns} turn${s.turns === 1 ? "" : "s"}${ended}`;
}

function element(tag, text, className) {
  const made = document.createElement(tag);
  if (text) made.textContent = text;
  if (className) made.className = className;
  return made;
}

// -- the list -----------------------------------------------------------------------------------------------
function showList() {
  const list = $("sessions");
  list.replaceChildren();
  for (const s of sessions) {
    const item = element("li", "", "session");
    item.dataset.id = s.id;
    const time = element("time", when(s.started_at));
    time.dateTime = s.started_at;
    const open = element("button", "", "open");
    open.type = "button";
    open.append(time, element("span", describe(s), "what"));
    open.addEventListener("click", () => openSession(s.id));
    item.append(open);
    list.append(item);
  }
  if (!sessions.length) list.append(element("li", "No sessions yet: your calls show here once they end.", "empty"));
  $("all-actions").hidden = !sessions.length;
}

// -- one session --------------------------------------------------------------------------------------------
async function openSession(id) {
  let session;
  try {
    session = await (await api(`/sessions/${encodeURIComponent(id)}`)).json();
  } catch (err) {
    say(err.message);
    return;
  }
  opened = session;
  $("detail-title").textContent = `${MODES[session.mode] || session.mode}, ${when(session.started_at)}`;
  $("detail-summary").textContent = describe({ ...session, turns: session.turns.length });
  const lines = new Transcript($("past-transcript"), session.language);
  lines.clear();
  for (const turn of session.turns) lines.add(turn.role, turn.text, turn.interrupted);
  const card = session.scorecard;
  $("past-scorecard").hidden = !card;
  if (card) {
    showScorecard({ ...card, questions: session.questions, study_next: card.study_next || [] }, {
      summary: $("past-score-summary"), questions: $("past-score-questions"), study: $("past-score-study"),
    });
  }
  $("detail").hidden = false;
  $("detail").focus(); // keyboard and screen reader users land on what they opened
  showRecording(session.id);
}

// The call's recording, if it has one (404 otherwise): an <audio> cannot send the profile's header, so it plays
// the fetched Ogg from a blob.
async function showRecording(id) {
  const player = $("past-recording");
  player.hidden = true;
  if (player.src) URL.revokeObjectURL(player.src);
  player.removeAttribute("src");
  const response = await fetch(`${API}/sessions/${encodeURIComponent(id)}/recording`, { headers: headers() });
  if (!response.ok || !opened || opened.id !== id) return;
  player.src = URL.createObjectURL(await response.blob());
  player.hidden = false;
}

function closeSession() {
  const id = opened && opened.id;
  opened = null;
  $("detail").hidden = true;
  const back = id && document.querySelector(`#sessions li[data-id="${CSS.escape(id)}"] button`);
  if (back) back.focus();
}

// A download the browser saves: fetched with the profile's header (a plain link cannot send it), then handed over.
async function download(path, name) {
  try {
    const blob = await (await api(path)).blob();
    const link = element("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (err) {
    say(err.message);
  }
}

function exportOne(format) {
  const ext = format === "markdown" ? "md" : "json";
  download(`/sessions/${encodeURIComponent(opened.id)}/export?format=${format}`, `parley-session-${opened.id}.${ext}`);
}

function exportAll(format) {
  download(`/export?format=${format}`, `parley-history.${format === "markdown" ? "md" : "json"}`);
}

async function deleteOne() {
  if (!opened || !window.confirm(`Delete the session of ${when(opened.started_at)}? This cannot be undone.`)) return;
  try {
    await api(`/sessions/${encodeURIComponent(opened.id)}`, "DELETE");
    say("The session was deleted.");
    $("detail").hidden = true;
    opened = null;
    await load();
    $("sessions-title").focus();
  } catch (err) {
    say(err.message);
  }
}

async function deleteAll() {
  if (!window.confirm("Delete all your sessions and your name from this server? This cannot be undone.")) return;
  try {
    const { deleted_sessions: gone } = await (await api("", "DELETE")).json();
    try {
      localStorage.removeItem("parley-name");
    } catch {
      // storage blocked: nothing kept here either
    }
    $("display-name").value = "";
    $("detail").hidden = true;
    opened = null;
    await load();
    say(`Deleted ${gone} session${gone === 1 ? "" : "s"} and your name.`);
  } catch (err) {
    say(err.message);
  }
}

// -- the chart ----------------------------------------------------------------------------------------------
function svg(tag, attributes, text) {
  const made = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) made.setAttribute(name, value);
  if (text !== undefined) made.textContent = text;
  return made;
}

// A chart at its own size in CSS pixels (its text as large as the page's): a narrow screen scrolls it sideways.
// Its label says in words all that it shows (a screen reader reads no shapes).
function sized(width, height, label) {
  return svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
}

function titled(shape, title) {
  shape.append(svg("title", {}, title));
  return shape;
}

// Verdicts per topic per interview: a row per topic, a column per interview (oldest left), one square per
// judged question coloured by its verdict; each square and column says in words what it shows.
function drawVerdicts(interviews) {
  const into = $("verdict-chart");
  const judged = interviews.map((s) => ({ ...s, questions: s.questions.filter((q) => q.verdict !== "unanswered") }))
    .filter((s) => s.questions.length);
  if (!judged.length) {
    into.replaceChildren(element("p", "No interview answers yet.", "empty"));
    return;
  }
  const topics = [...new Set(judged.flatMap((s) => s.questions.map((q) => q.topic)))].sort();
  const label = 140, column = 64, row = 30, box = 16, top = 24;
  const most = Math.max(...judged.flatMap((s) => topics.map((t) => s.questions.filter((q) => q.topic === t).length)));
  const width = label + judged.length * Math.max(column, most * (box + 2) + 8);
  const step = (width - label) / judged.length;
  const said = judged.map((s) => `${when(s.started_at)}: ` + s.questions.map((q) => `${topicName(q.topic)} ` +
    (VERDICTS.find(([v]) => v === q.verdict)?.[1] || q.verdict).toLowerCase()).join(", "));
  const chart = sized(width, top + topics.length * row, `Interview answers by topic. ${said.join(". ")}.`);
  judged.forEach((s, i) => {
    const day = new Date(s.started_at).toLocaleDateString(undefined, { month: "short", day: "numeric" });
    chart.append(titled(svg("text", { x: label + i * step + 4, y: 14, class: "axis" }, day), when(s.started_at)));
  });
  topics.forEach((topic, r) => {
    const y = top + r * row;
    chart.append(svg("text", { x: 0, y: y + box, class: "axis" }, topicName(topic)));
    judged.forEach((s, i) => {
      s.questions.filter((q) => q.topic === topic).forEach((q, n) => {
        const name = VERDICTS.find(([v]) => v === q.verdict)?.[1] || q.verdict;
        chart.append(titled(svg("rect", { x: label + i * step + 4 + n * (box + 2), y: y + 2, width: box,
          height: box, rx: 2, class: "verdict " + q.verdict }), `${when(s.started_at)}, ${topicName(topic)}: ${name}`));
      });
    });
  });
  const legend = element("ul", "", "legend");
  for (const [verdict, name] of VERDICTS) {
    const item = element("li");
    item.append(element("span", "", "swatch " + verdict), name);
    legend.append(item);
  }
  into.replaceChildren(chart, legend);
}

// Sessions and minutes per language: a bar per language as long as its minutes, with both numbers in words.
function drawLanguages() {
  const into = $("language-chart");
  const per = {};
  for (const s of sessions) {
    const entry = (per[s.language] ||= { sessions: 0, minutes: 0 });
    entry.sessions += 1;
    entry.minutes += seconds(s) / 60;
  }
  const rows = Object.entries(per).sort((a, b) => b[1].minutes - a[1].minutes);
  const label = 120, bar = 22, gap = 10, width = 480, room = 150;
  const most = Math.max(...rows.map(([, e]) => e.minutes), 1 / 60);
  const said = rows.map(([code, e]) => `${language(code)}: ${e.sessions} session${e.sessions === 1 ? "" : "s"}, ` +
    `${e.minutes.toFixed(1)} minutes`);
  const chart = sized(width, rows.length * (bar + gap), `Sessions and minutes per language. ${said.join(". ")}.`);
  rows.forEach(([code, e], r) => {
    const y = r * (bar + gap);
    const words = `${e.sessions} session${e.sessions === 1 ? "" : "s"}, ${e.minutes.toFixed(1)} min`;
    const name = svg("text", { x: 0, y: y + bar - 6, class: "axis" }, language(code));
    name.setAttribute("lang", code);
    const length = Math.max(2, ((width - label - room) * e.minutes) / most);
    chart.append(name, titled(svg("rect", { x: label, y, width: length, height: bar, rx: 3, class: "minutes" }),
      `${language(code)}: ${words}`), svg("text", { x: label + length + 6, y: y + bar - 6, class: "axis" }, words));
  });
  into.replaceChildren(chart);
}

async function drawProgress() {
  $("progress").hidden = !sessions.length;
  if (!sessions.length) return;
  drawLanguages();
  const newest = sessions.filter((s) => s.mode === "interview").slice(0, INTERVIEWS_CHARTED);
  const interviews = await Promise.all(newest.map((s) => api(`/sessions/${encodeURIComponent(s.id)}`)
    .then((r) => r.json()).catch(() => null)));  // one deleted meanwhile: left out
  drawVerdicts(interviews.filter(Boolean).reverse());
}

// -- loading ------------------------------------------------------------------------------------------------
async function loadLanguages() {
  try {
    const { languages } = await (await fetch("../languages")).json();
    for (const l of languages) {
      languageNames[l.code] = l.native_name;
      DIRECTIONS[l.code] = l.direction;
    }
  } catch {
    // the codes stand in for the names
  }
}

async function load() {
  if (!profile()) {
    sessions = [];
    showList();
    say("This browser has no profile yet: place a call first.");
    return;
  }
  try {
    ({ sessions } = await (await api("/sessions")).json());
  } catch (err) {
    sessions = [];
    say(err.message);
  }
  showList();
  await drawProgress();
  document.body.dataset.loaded = "true"; // for tests: the list and the chart are drawn
}

function loadName() {
  try {
    $("display-name").value = localStorage.getItem("parley-name") || "";
  } catch {
    $("name-form").hidden = true; // nowhere to keep it
  }
}

$("name-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const name = $("display-name").value.trim();
  try {
    if (name) localStorage.setItem("parley-name", name);
    else localStorage.removeItem("parley-name");
    say(name ? `Saved: your next call is recorded as ${name}.` : "Name removed.");
  } catch (err) {
    say(err.message);
  }
});
$("export-json").addEventListener("click", () => exportOne("json"));
$("export-md").addEventListener("click", () => exportOne("markdown"));
$("export-all-json").addEventListener("click", () => exportAll("json"));
$("export-all-md").addEventListener("click", () => exportAll("markdown"));
$("delete-one").addEventListener("click", deleteOne);
$("delete-all").addEventListener("click", deleteAll);
$("close-detail").addEventListener("click", closeSession);
document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !$("detail").hidden) closeSession(); });

loadName();
loadLanguages().then(load);
