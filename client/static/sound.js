// The sound of a call: the soft tones when it connects and ends, and the level meters of both sides.
// A classic script (not a module): app.js and the tests reach these by their global names.
"use strict";

const Sound = (() => {
  let context = null; // one for the page's life: a call's end tone must outlive the call

  // Made on the click that starts a call, so the browser lets it play (autoplay policy).
  function audio() {
    if (!context || context.state === "closed") context = new AudioContext();
    if (context.state === "suspended") context.resume();
    return context;
  }

  // A soft sine note with a 10 ms attack and a smooth release: no click at either end.
  function note(ctx, frequency, start, length) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = frequency;
    gain.gain.setValueAtTime(0, start);
    gain.gain.linearRampToValueAtTime(0.08, start + 0.01);
    gain.gain.setTargetAtTime(0, start + length * 0.5, length / 5);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start);
    osc.stop(start + length + 0.1);
  }

  const TONES = { connected: [523.25, 783.99], ended: [659.25, 440] }; // up when it starts, down when it ends

  function tone(kind) {
    const ctx = audio();
    const t = ctx.currentTime + 0.02;
    TONES[kind].forEach((f, i) => note(ctx, f, t + i * 0.12, 0.18));
    if (window.parleyDebug) window.parleyDebug.tones.push(kind);
  }

  // A meter on a stream: the RMS level, every 60 ms, as the width of the bar (and aria-valuenow).
  // The stream is only analysed, never played through Web Audio: the <audio> element plays the bot, so its
  // first sound cannot click from a gain that jumps.
  function meter(stream, bar) {
    const ctx = audio();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 512;
    const source = ctx.createMediaStreamSource(stream);
    source.connect(analyser);
    const data = new Float32Array(analyser.fftSize);
    const timer = setInterval(() => {
      analyser.getFloatTimeDomainData(data);
      let sum = 0;
      for (const v of data) sum += v * v;
      const percent = Math.min(100, Math.sqrt(sum / data.length) * 400);
      bar.style.width = percent + "%";
      bar.parentElement.setAttribute("aria-valuenow", String(Math.round(percent)));
    }, 60);
    return () => {
      clearInterval(timer);
      source.disconnect();
      bar.style.width = "0";
      bar.parentElement.setAttribute("aria-valuenow", "0");
    };
  }

  return { audio, tone, meter };
})();
