// The live transcript and the interview's scorecard, drawn from a call's events: shared by the call page (app.js)
// and the <parley-call> element (parley-call.js), so both show a call the same way.

/** Languages written right to left; the page adds the server's list (GET /languages) as it learns it. */
export const DIRECTIONS = { ar: "rtl" };

/**
 * Captions in a list element: the person's lines, and the bot's as it speaks (one `caption` event per sentence as
 * it starts playing), settled by the final `transcript`, which holds what was actually heard.
 */
export class Transcript {
  /** @param {HTMLElement} list an <ol> or <ul> @param {string} [language] the call's language */
  constructor(list, language = "en") {
    this.list = list;
    this.language = language;
    this.live = null; // the bot's line being captioned
  }

  /** Follows a call: its transcripts, captions and `ready` (the language of the lines after it). */
  follow(call) {
    call.on("transcript", (e) => this.add(e.role, e.text, e.interrupted, e.continues));
    call.on("caption", (e) => this.caption(e.text));
    call.on("ready", (e) => {
      this.live = null;
      this.language = e.language || this.language;
    });
  }

  clear() {
    this.list.replaceChildren();
    this.live = null;
  }

  // A caption line in the call's language and its direction (Arabic right to left); the "You:"/"Bot:" label is
  // English, isolated so it does not reorder the words around it.
  line(role) {
    const item = document.createElement("li");
    item.lang = this.language;
    item.dir = DIRECTIONS[this.language] || "auto";
    const who = document.createElement("bdi");
    who.lang = "en";
    who.textContent = role === "user" ? "You:" : "Bot:";
    const words = document.createElement("span");
    words.className = "words";
    item.append(who, " ", words);
    return item;
  }

  // A user's line that "continues" the turn before replaces it and the bot's reply cut in between.
  takeBackLastTurn() {
    const lines = Array.from(this.list.children);
    const last = lines.map((line) => line.classList.contains("user")).lastIndexOf(true);
    if (last >= 0) lines.slice(last).forEach((line) => line.remove());
    this.live = null;
  }

  add(role, text, interrupted, continues) {
    if (continues) this.takeBackLastTurn();
    const item = role === "assistant" && this.live ? this.live : this.line(role);
    if (item === this.live) this.live = null;
    item.className = role + (interrupted ? " interrupted" : "");
    item.querySelector(".words").textContent = text;
    this.list.appendChild(item);
  }

  caption(text) {
    if (!this.live) {
      this.live = this.line("assistant");
      this.live.className = "assistant live";
      this.list.appendChild(this.live);
    }
    const words = this.live.querySelector(".words");
    words.textContent = words.textContent ? words.textContent + " " + text : text;
  }
}

const VERDICTS = { correct: "Correct", partly: "Partly right", wrong: "Not right", no_answer: "No answer",
  skipped: "Skipped", unanswered: "Not answered" };

function listItem(text, className) {
  const item = document.createElement("li");
  item.textContent = text;
  if (className) item.className = className;
  return item;
}

/**
 * The interview's scorecard: every question asked, what each answer covered and missed, what to study next.
 * @param {object} card the `scorecard` event
 * @param {{summary: HTMLElement, questions: HTMLElement, study: HTMLElement}} into
 */
export function showScorecard(card, into) {
  const t = card.totals || {};
  into.summary.textContent = `${card.asked} question${card.asked === 1 ? "" : "s"} asked, ` +
    `${card.answered} answered: ${t.correct || 0} correct, ${t.partly || 0} partly right, ` +
    `${t.wrong || 0} not right, ${t.no_answer || 0} without an answer, ${t.skipped || 0} skipped.`;
  into.questions.replaceChildren();
  for (const q of card.questions) {
    const item = listItem("", "verdict-" + q.verdict);
    const title = document.createElement("p");
    title.className = "question";
    title.textContent = `${q.question} (${q.topic.replace("_", " ")}, ${q.level}): ${VERDICTS[q.verdict] || q.verdict}`;
    item.appendChild(title);
    const points = document.createElement("ul");
    q.covered.forEach((p) => points.appendChild(listItem("Covered: " + p, "covered")));
    if (q.verdict !== "unanswered") q.missed.forEach((p) => points.appendChild(listItem("Missed: " + p, "missed")));
    item.appendChild(points);
    into.questions.appendChild(item);
  }
  into.study.replaceChildren(...card.study_next.map((s) => listItem(s)));
}

/** What the person reads when the server ends a call (or the call is lost); none for a call they hung up. */
export const ENDED = {
  idle: "The call ended: nothing was said for a while.",
  max_duration: "The call reached its time limit.",
  peer_gone: "The call was lost.",
  shutdown: "The server ended the call to restart.",
  media_failed: "The call was lost.",
  lost: "The call was lost.",
};
/** Ends that are not the person's doing: offer a new call. */
export const CALL_AGAIN = new Set(["peer_gone", "shutdown", "media_failed", "lost"]);
