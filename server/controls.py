"""The person's call controls: mute, hold ("give me a moment") and push-to-talk. What each does to the call's
turn-taking, and the ``controls`` event that tells the client what the server now holds (docs/protocol.md)."""

from __future__ import annotations

from dataclasses import dataclass

from server.dialogue.turn_taking import TurnTaker
from server.events import Control
from server.protocol import Controls

TALK_NEEDS_PUSH_TO_TALK = '"talk" works in push-to-talk only: send {"type": "push_to_talk", "enabled": true} first'


@dataclass
class CallControls:
    muted: bool = False
    held: bool = False
    push_to_talk: bool = False
    talking: bool = False  # push-to-talk's button is down

    @property
    def hearing(self) -> bool:
        """Whether the person's microphone counts now."""
        return not self.muted and (self.talking or not self.push_to_talk)

    @property
    def pauses_idle(self) -> bool:
        """A muted person, or one who asked for a moment, is still there: the idle limit waits."""
        return self.muted or self.held

    def apply(self, control: Control, turn_taker: TurnTaker) -> str | None:
        """Switches ``control``; returns why it cannot be, when it cannot."""
        name, on = control.name, control.on
        if name == "talk" and not self.push_to_talk:
            return TALK_NEEDS_PUSH_TO_TALK
        if name == "mute":
            self.muted = on
        elif name == "hold":
            self.held = on
            turn_taker.hold(on)
        elif name == "push_to_talk":
            self.push_to_talk, self.talking = on, False
        elif on != self.talking:  # talk
            self.talking = on
            if on:
                turn_taker.barge_in()
        turn_taker.listen(self.hearing)
        if name == "talk" and not on:
            turn_taker.end_turn_now()
        return None

    def event(self) -> Controls:
        return Controls(
            type="controls", muted=self.muted, held=self.held, push_to_talk=self.push_to_talk, talking=self.talking
        )
