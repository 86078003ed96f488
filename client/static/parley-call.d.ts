// Types of parley-call.js: the <parley-call> element and the events it dispatches ("parley-" + the call's).
import type { Call, CallEventMap, Language, Mode } from "./parley.js";

/** The element's events: each of the call's, named "parley-<type>", plus "parley-failed" (the call could not start). */
export type ParleyCallEventMap = { [K in keyof CallEventMap as `parley-${K}`]: CustomEvent<CallEventMap[K]> } & {
  "parley-failed": CustomEvent<{ message: string }>;
};

export declare class ParleyCallElement extends HTMLElement {
  static observedAttributes: string[];
  /** The call in progress, or null. */
  call: Call | null;
  /** The `mode` attribute (default "chat"). */
  readonly mode: Mode;
  /** The `language` attribute (default "en"). */
  readonly language: Language;
  /** Places a call with the element's attributes (url, token or token-url, mode, language). */
  start(): Promise<Call | null>;
  /** Hangs up. */
  end(): Promise<void>;
  /** Typed input, answered like speech; false when no call is open. */
  sendText(text: string): boolean;
  addEventListener<K extends keyof ParleyCallEventMap>(type: K, listener: (event: ParleyCallEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener<K extends keyof HTMLElementEventMap>(type: K,
    listener: (this: HTMLElement, ev: HTMLElementEventMap[K]) => unknown,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions): void;
}

declare global {
  interface HTMLElementTagNameMap {
    "parley-call": ParleyCallElement;
  }
}
