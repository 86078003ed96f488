// Call controls: mute (M), "give me a moment" (H), push-to-talk with its talk button (or Space), and a change
// of microphone mid-call. Each sends its message on the events channel (docs/protocol.md, "Call controls"); the
// server's "controls" event that answers is the truth the buttons then show.
// Loaded after app.js: uses its send(), micStream, pc and $.
"use strict";

const Controls = (() => {
  const state = { muted: false, held: false, push_to_talk: false, talking: false };

  // The microphone sends sound only when not muted and, with push-to-talk, only while the button is down:
  // the server is told too, but what is not sent cannot be heard.
  function applyMic() {
    const live = !state.muted && (!state.push_to_talk || state.talking);
    if (micStream) micStream.getAudioTracks().forEach((t) => { t.enabled = live; });
  }

  function show() {
    $("mute").setAttribute("aria-pressed", String(state.muted));
    $("muted-badge").hidden = !state.muted;
    $("hold").setAttribute("aria-pressed", String(state.held));
    $("held").hidden = !state.held;
    $("ptt").checked = state.push_to_talk;
    $("talk").hidden = !state.push_to_talk;
    $("talk").setAttribute("aria-pressed", String(state.talking));
    applyMic();
  }

  // A change the person made: shown at once, sent, and set right by the server's "controls" answer.
  function change(fields, message) {
    if (!send(message)) return;
    Object.assign(state, fields);
    show();
  }

  function reflect(event) {
    for (const key of Object.keys(state)) if (typeof event[key] === "boolean") state[key] = event[key];
    show();
  }

  function reset() {
    Object.assign(state, { muted: false, held: false, push_to_talk: false, talking: false });
    show();
    enable(false);
  }

  function enable(on) {
    ["mute", "hold", "ptt"].forEach((id) => { $(id).disabled = !on; });
  }

  const toggleMute = () => change({ muted: !state.muted }, { type: "mute", muted: !state.muted });
  const toggleHold = () => change({ held: !state.held }, { type: "hold", held: !state.held });

  function talk(pressed) {
    if (!state.push_to_talk || state.talking === pressed) return; // key repeat and double ups send nothing
    change({ talking: pressed }, { type: "talk", pressed });
  }

  $("mute").addEventListener("click", toggleMute);
  $("hold").addEventListener("click", toggleHold);
  $("ptt").addEventListener("change", () => {
    const enabled = $("ptt").checked;
    change({ push_to_talk: enabled, talking: false }, { type: "push_to_talk", enabled });
    $("ptt").checked = state.push_to_talk; // not sent (no call): the box stays as it was
  });

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
    if (!plain(e) || !pc) return;
    if (e.code === "Space" && state.push_to_talk && !ownsSpace(e.target)) {
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
    if (e.code === "Space" && state.push_to_talk && !ownsSpace(e.target)) {
      e.preventDefault();
      talk(false);
    }
  });
  window.addEventListener("blur", () => talk(false)); // the key's release would be missed in another window

  // A different microphone mid-call: the sender's track is replaced, the call goes on.
  async function switchMic() {
    if (!pc || !micStream) return;
    const sender = pc.getSenders().find((s) => s.track && s.track.kind === "audio");
    try {
      const stream = await navigator.mediaDevices.getUserMedia(Devices.constraints());
      if (!pc || !sender) { stream.getTracks().forEach((t) => t.stop()); return; }
      await sender.replaceTrack(stream.getAudioTracks()[0]);
      micStream.getTracks().forEach((t) => t.stop());
      micStream = stream;
      if (stopMicMeter) stopMicMeter();
      stopMicMeter = Sound.meter(stream, $("level"));
      applyMic();
    } catch (err) {
      showError("That microphone could not be used: " + (err.message || err));
    }
  }

  $("mic-select").addEventListener("change", switchMic);
  $("speaker-select").addEventListener("change", () => Devices.applySpeaker($("remote")));

  return { reflect, reset, enable, state };
})();
