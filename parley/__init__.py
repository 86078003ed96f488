"""Parley: a real-time voice practice partner over WebRTC."""
