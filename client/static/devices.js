// Microphone and speaker choice. The lists come from enumerateDevices(); their names only once the page may use
// the microphone, so they are filled again after getUserMedia and whenever a device comes or goes.
"use strict";

const Devices = (() => {
  const mic = () => document.getElementById("mic-select");
  const speaker = () => document.getElementById("speaker-select");
  // Chromium and Firefox can send an <audio> element's sound to a chosen output; Safari cannot: no picker there.
  const canPickSpeaker = "setSinkId" in HTMLMediaElement.prototype;

  function fill(select, devices, fallback) {
    const chosen = select.value;
    const options = devices.map((d, i) => new Option(d.label || `${fallback} ${i + 1}`, d.deviceId));
    select.replaceChildren(new Option(`Default ${fallback.toLowerCase()}`, ""), ...options);
    select.value = devices.some((d) => d.deviceId === chosen) ? chosen : "";
  }

  async function refresh() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    const all = await navigator.mediaDevices.enumerateDevices();
    // "default" and "communications" are aliases of real devices: the first option stands for them.
    const real = (kind) => all.filter((d) => d.kind === kind && d.deviceId && !["default", "communications"].includes(d.deviceId));
    fill(mic(), real("audioinput"), "Microphone");
    if (canPickSpeaker) {
      fill(speaker(), real("audiooutput"), "Speaker");
      document.getElementById("speaker-picker").hidden = false;
    }
  }

  // The constraints of the microphone chosen; Chromium's processing stays on (echo cancellation matters most:
  // the bot must not hear itself from the loudspeakers).
  function constraints() {
    const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    if (mic().value) audio.deviceId = { exact: mic().value };
    return { audio };
  }

  async function applySpeaker(element) {
    if (!canPickSpeaker) return;
    try {
      await element.setSinkId(speaker().value);
    } catch (err) {
      console.warn("the speaker could not be chosen:", err);
    }
  }

  if (navigator.mediaDevices) navigator.mediaDevices.addEventListener("devicechange", refresh);
  refresh();
  return { refresh, constraints, applySpeaker, canPickSpeaker };
})();
