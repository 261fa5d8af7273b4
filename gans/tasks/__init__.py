"""The tasks of `python run.py task=...`: `train` (the default), `translate`, `evaluate` and
`generate`. Each is a function of the composed Hydra config; `run.py` dispatches and turns
`GansError`s into one-line messages."""
