"""audioworkout: turn a workout routine into a voice-guided audio track.

Stages, one module each: content (routines) -> plan -> script -> speech -> track -> mp3
(-> feed). The CLI in :mod:`audioworkout.cli` is a thin layer over :mod:`audioworkout.api`.
"""

__version__ = "0.1.0"
