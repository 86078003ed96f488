"""Parley: a real-time voice practice partner served over WebRTC."""
