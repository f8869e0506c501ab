"""The hearing: keyword spotters (frames in, detections out) and the echo canceller.

Bottom up: words (the interface every engine shares), features, dtw, embedding, verifier,
sphinx (pocketsphinx engine), learned (the learned engine), enroll (a person's takes), engines
(which spotter hears a session), worker (a spotter in its own process), echo (the canceller).
"""

ENGINES = ("auto", "learned", "pocketsphinx")
"""`learned` knows only the default vocabulary; `auto` uses it when it covers the routine's words.
Here, not in engines.py, so the command line can offer them without loading an engine."""
