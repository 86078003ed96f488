"""What the call page's tests (test_browser.py, test_cluster.py) read from inside the page."""

# Runs in the page before app.js: records every data-channel event, every change of the state label, and
# the level of the remote stream (the <audio id="remote"> element's srcObject), each with performance.now().
PROBE = """
window.__probe = { events: [], states: [], levels: [] };
window.addEventListener("parley-event", (e) => __probe.events.push({ t: performance.now(), ...e.detail }));
document.addEventListener("DOMContentLoaded", () => {
  const label = document.getElementById("state"), remote = document.getElementById("remote");
  new MutationObserver(() => __probe.states.push({ t: performance.now(), text: label.textContent }))
    .observe(label, { childList: true, characterData: true, subtree: true });
  let analyser = null;
  const data = new Float32Array(1024);
  setInterval(() => {
    if (!analyser && remote.srcObject) {
      const ctx = new AudioContext();
      analyser = ctx.createAnalyser();
      analyser.fftSize = data.length;
      ctx.createMediaStreamSource(remote.srcObject).connect(analyser);
    }
    if (!analyser) return;
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    __probe.levels.push({ t: performance.now(), rms: Math.sqrt(sum / data.length) });
  }, 20);
});
"""
