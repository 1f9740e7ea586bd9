"""Speech engines, one file each; they register themselves by name."""
