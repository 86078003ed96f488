// The line's quality, from the peer connection's stats once a second: round trip, the loss and jitter of the
// bot's audio coming in, graded Good / Fair / Poor. A classic script: app.js calls Line.watch(pc).
"use strict";

const Line = (() => {
  // Where a call starts to sound wrong: past 400 ms of round trip people talk over each other, past 5 % loss
  // words go missing, past 50 ms of jitter the receiver's buffer stretches audibly (the brief's thresholds;
  // "Fair" at half of each).
  const POOR = { rtt: 400, loss: 5, jitter: 50 };
  const FAIR = { rtt: 200, loss: 2, jitter: 25 };
  const GRADES = { good: "Good", fair: "Fair", poor: "Poor" };

  function grade(f) {
    const over = (limit) => f.rtt > limit.rtt || f.loss > limit.loss || f.jitter > limit.jitter;
    if (over(POOR)) return "poor";
    return over(FAIR) ? "fair" : "good";
  }

  // The figures of one getStats() report; loss over the packets since the last report, so an old burst fades.
  function figures(report, last) {
    let pair = null;
    let inbound = null;
    report.forEach((r) => {
      if (r.type === "transport" && r.selectedCandidatePairId) pair = report.get(r.selectedCandidatePairId);
      if (r.type === "inbound-rtp" && r.kind === "audio") inbound = r;
    });
    if (!pair) report.forEach((r) => { if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") pair = r; });
    if (!inbound) return null;
    const received = inbound.packetsReceived || 0;
    const lost = Math.max(0, inbound.packetsLost || 0);
    const newReceived = received - last.received;
    const newLost = lost - last.lost;
    last.received = received;
    last.lost = lost;
    const loss = newReceived + newLost > 0 ? (100 * newLost) / (newReceived + newLost) : 0;
    const rtt = pair && pair.currentRoundTripTime !== undefined ? pair.currentRoundTripTime * 1000 : 0;
    return { rtt, loss, jitter: (inbound.jitter || 0) * 1000 };
  }

  function show(f) {
    const el = document.getElementById("quality");
    const level = grade(f);
    const text = `round trip ${Math.round(f.rtt)} ms, loss ${f.loss.toFixed(1)} %, jitter ${Math.round(f.jitter)} ms`;
    el.dataset.grade = level;
    el.title = text; // the figures on hover; on a poor line in plain sight
    if (level === "poor") {
      el.textContent = `Poor line: ${text}`;
    } else {
      // Screen readers and keyboard users get the figures too, as text only they read.
      const figures = document.createElement("span");
      figures.className = "visually-hidden";
      figures.textContent = ` (${text})`;
      el.replaceChildren(`Line: ${GRADES[level]}`, figures);
    }
    el.hidden = false;
  }

  // Polls until the call is over (isCurrent() false); returns nothing: the timer stops itself.
  function watch(peer, isCurrent) {
    const last = { received: 0, lost: 0 };
    const timer = setInterval(async () => {
      if (!isCurrent()) { clearInterval(timer); return; }
      if (peer.connectionState !== "connected") return;
      const f = figures(await peer.getStats(), last);
      if (f && isCurrent()) show(f);
    }, 1000);
  }

  function hide() {
    const el = document.getElementById("quality");
    el.hidden = true;
    el.textContent = "Line: …";
    delete el.dataset.grade;
  }

  return { grade, show, watch, hide };
})();
