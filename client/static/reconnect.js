// Taking the call up again after its connection dropped (Wi-Fi to mobile, a laptop lid, a blip): a new connection
// is offered to POST /resume with the call's session id and the secret its first answer gave this page; the server
// keeps the call (conversation, interview, scorecard) for PARLEY_RECONNECT_S meanwhile. Uses app.js's globals.
"use strict";

const Reconnect = (() => {
  // How long the page keeps trying when the server cannot be reached at all (it may be the network, changing).
  // A server that answers that the call is gone ends the attempts at once.
  const TRY_FOR_MS = 8000;
  const EVERY_MS = 1000;
  let session = null; // { id, secret } of the call in progress
  let since = 0; // performance.now() when the connection was lost; 0 while connected
  let timer = null;

  function placed(id, secret) {
    session = id && secret ? { id, secret } : null;
  }

  // The connection ``peer`` is lost: true when the page is trying to take the call up again.
  function start(peer) {
    if (!session || !connectedAt) return false; // never connected: nothing to take up
    if (since) return true; // trying already
    since = performance.now();
    peer.close();
    setState("reconnecting");
    setTyping(false);
    attempt();
    return true;
  }

  async function attempt() {
    if (!since || !session) return;
    let status = 0;
    try {
      const offer = await offerFrom(newPeer(Reconnect.iceServers || []));
      // The header takes the request to the worker that holds the call, behind a balancer (deploy/haproxy.cfg).
      const headers = { "Content-Type": "application/json", "X-Parley-Session": session.id };
      const response = await fetch("resume", { method: "POST", headers,
        body: JSON.stringify({ ...offer, session_id: session.id, reconnect_secret: session.secret }) });
      status = response.status;
      const answer = await response.json();
      if (response.ok && since) {
        await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
        return; // done once it connects (done())
      }
    } catch (err) {
      console.warn("reconnecting failed:", err);
    }
    if (!since) return;
    const gone = status >= 400 && status < 500; // the call has ended, or is not this page's
    if (gone || performance.now() - since > TRY_FOR_MS) { stop(); giveUp(); return; }
    timer = setTimeout(attempt, EVERY_MS);
  }

  // ``peer`` connected: if it took the call up again, the call goes on.
  function done(peer) {
    if (!since || pc !== peer) return;
    since = 0;
    showError("");
    setState("listening"); // the reply in progress was cut when the line dropped: the person speaks next
    Line.watch(peer, () => pc === peer);
  }

  function stop() {
    since = 0;
    clearTimeout(timer);
  }

  return { placed, start, done, stop, iceServers: null };
})();
