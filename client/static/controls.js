// The call page's controls: mute (M), "give me a moment" (H), push-to-talk with its talk button (or Space), and a
// change of microphone mid-call. The call (parley.js) sends each message and keeps the controls' state; the
// server's "controls" event that answers is the truth the buttons then show.

const $ = (id) => document.getElementById(id);
const IDLE = { muted: false, held: false, push_to_talk: false, talking: false };

/**
 * Binds the page's control buttons to the call in progress.
 * @param {() => import("./parley.js").Call | null} current the call in progress, or null
 * @param {(message: string) => void} showError
 */
export function bindControls(current, showError) {
  const state = () => (current() ? current().controls : IDLE);

  function show() {
    const s = state();
    $("mute").setAttribute("aria-pressed", String(s.muted));
    $("muted-badge").hidden = !s.muted;
    $("hold").setAttribute("aria-pressed", String(s.held));
    $("held").hidden = !s.held;
    $("ptt").checked = s.push_to_talk;
    $("talk").hidden = !s.push_to_talk;
    $("talk").setAttribute("aria-pressed", String(s.talking));
  }

  function reset() {
    show();
    enable(false);
  }

  function enable(on) {
    ["mute", "hold", "ptt"].forEach((id) => { $(id).disabled = !on; });
  }

  // Each change shows at once (the call keeps it) and is set right by the server's "controls" answer.
  const act = (fn) => { const call = current(); if (call) fn(call); show(); };
  const toggleMute = () => act((call) => call.mute(!call.controls.muted));
  const toggleHold = () => act((call) => call.hold(!call.controls.held));
  const talk = (pressed) => act((call) => call.talk(pressed)); // key repeat and double ups send nothing

  $("mute").addEventListener("click", toggleMute);
  $("hold").addEventListener("click", toggleHold);
  $("ptt").addEventListener("change", () => act((call) => call.pushToTalk($("ptt").checked))); // no call: unchanged

  // The talk button: held with a mouse, a finger or a pen; let go anywhere (pointer capture) to end the turn.
  const talkButton = $("talk");
  talkButton.addEventListener("pointerdown", (e) => { talkButton.setPointerCapture(e.pointerId); talk(true); });
  ["pointerup", "pointercancel", "lostpointercapture"].forEach((kind) => talkButton.addEventListener(kind, () => talk(false)));
  talkButton.addEventListener("contextmenu", (e) => e.preventDefault()); // a long press on a phone

  // Shortcuts: not while typing in a text field, and never with Ctrl/Alt/Meta (the browser's own).
  // Space belongs to any form field that has focus (a checkbox toggles with it); letters only to text fields.
  const matches = (target, selector) => Boolean(target.matches && target.matches(selector));
  const ownsSpace = (target) => matches(target, "input, textarea, select, [contenteditable]");
  const typing = (target) => matches(target, "input:not([type=checkbox]), textarea, select, [contenteditable]");
  const plain = (e) => !e.ctrlKey && !e.altKey && !e.metaKey;

  document.addEventListener("keydown", (e) => {
    if (!plain(e) || !current()) return;
    if (e.code === "Space" && state().push_to_talk && !ownsSpace(e.target)) {
      e.preventDefault(); // not a click on the focused button, not a scroll
      if (!e.repeat) talk(true);
    } else if (typing(e.target) || e.repeat) {
      return;
    } else if (e.key === "m" || e.key === "M") {
      if (!$("mute").disabled) toggleMute();
    } else if (e.key === "h" || e.key === "H") {
      if (!$("hold").disabled) toggleHold();
    }
  });
  document.addEventListener("keyup", (e) => {
    if (e.code === "Space" && state().push_to_talk && !ownsSpace(e.target)) {
      e.preventDefault();
      talk(false);
    }
  });
  window.addEventListener("blur", () => talk(false)); // the key's release would be missed in another window

  // A different microphone mid-call: the call's track is replaced, the call goes on.
  $("mic-select").addEventListener("change", async () => {
    const call = current();
    if (!call || !call.pc) return;
    try {
      await call.switchMicrophone(Devices.constraints().audio);
    } catch (err) {
      showError("That microphone could not be used: " + (err.message || err));
    }
  });
  $("speaker-select").addEventListener("change", () => Devices.applySpeaker($("remote")));

  return { show, reset, enable };
}
