"""voicecoach: an offline, hands-free voice coach for guided stretching."""

__version__ = "0.1.0"
