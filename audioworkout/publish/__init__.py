"""The publish stage: a folder of built tracks as a podcast feed, a web page and a small server."""
