// How an app uses the JavaScript client, type-checked against client/static/*.d.ts by tests/test_js_types.py.
import { Call, ParleyError, connect, type ServerMessage } from "../../client/static/parley.js";
import "../../client/static/parley-call.js";

async function practice(token: string): Promise<string[]> {
  const heard: string[] = [];
  const call = await connect({
    url: "https://parley.example.com/voice",
    token: async () => token,
    mode: "language",
    language: "es",
    on: { ready: (e) => console.log(e.session_id, e.mode) },
  });
  call.on("transcript", (e) => heard.push(`${e.role}: ${e.text}${e.interrupted ? "…" : ""}`));
  call.on("metrics", (e) => console.log(e.response_ms, e.stt_ms ?? "typed"));
  call.on("scorecard", (card) => card.questions.forEach((q) => console.log(q.verdict, q.missed.join(", "))));
  call.addEventListener("ended", (e) => console.log(e.detail.reason, e.detail.local === true));
  call.on("message", (message: ServerMessage) => {
    // The union narrows on `type`.
    if (message.type === "error") console.warn(message.code, message.message);
    if (message.type === "controls") console.log(message.muted, message.push_to_talk);
  });
  call.sendText("¿Qué tal?");
  call.mute(true);
  call.hold(false);
  call.pushToTalk(true);
  call.talk(true);
  await call.switchMicrophone("a-device-id");
  await call.end();
  return heard;
}

function embed(): void {
  const element = document.createElement("parley-call");
  element.setAttribute("token-url", "/call-token");
  element.addEventListener("parley-caption", (e) => console.log(e.detail.text));
  element.addEventListener("parley-ended", (e) => console.log(e.detail.reason));
  document.body.append(element);
  void element.start().then((call) => call?.setMode("chat"));
}

try {
  void practice("a-call-token");
  embed();
  new Call({ audioElement: null }).on("track", ({ stream }) => console.log(stream.id));
} catch (err) {
  if (err instanceof ParleyError) console.log(err.status);
}
