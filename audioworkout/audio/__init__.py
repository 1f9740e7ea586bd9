"""The audio stage: speech, silences and chimes on the timeline, mastered, encoded to MP3 with sidecars."""
