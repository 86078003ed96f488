// Places a Parley call from a page of another origin: a call token from this app's backend, then Parley's
// /ice (STUN/TURN, with a TURN credential that expires) and /offer, both with the token.
"use strict";

const status = (text) => { document.getElementById("status").textContent = text; };

async function startCall() {
  status("Connecting…");
  const minted = await (await fetch("/call-token", { method: "POST" })).json();
  if (minted.error) throw new Error(minted.error);
  const auth = { Authorization: "Bearer " + minted.token };
  const ice = await (await fetch(minted.parley + "/ice", { headers: auth })).json();
  if (ice.error) throw new Error(ice.error);

  const pc = new RTCPeerConnection({ iceServers: ice.iceServers });
  const events = pc.createDataChannel("events", { ordered: true });
  events.onmessage = (msg) => {
    const event = JSON.parse(msg.data);
    if (event.type === "state") status(event.state);
    window.dispatchEvent(new CustomEvent("parley-event", { detail: event }));
  };
  const mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true } });
  mic.getAudioTracks().forEach((track) => pc.addTrack(track, mic));
  pc.ontrack = (e) => { document.getElementById("remote").srcObject = e.streams[0] || new MediaStream([e.track]); };
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {  // all candidates in the offer (Parley does not trickle)
    if (pc.iceGatheringState === "complete") resolve();
    pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === "complete") resolve(); };
    setTimeout(resolve, 3000);
  });
  const response = await fetch(minted.parley + "/offer", {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json" },
    body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", mode: "chat", language: "en" }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error);
  await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
}

document.getElementById("call").addEventListener("click", () => {
  startCall().catch((err) => status("Could not call: " + err.message));
});
