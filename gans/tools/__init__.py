"""The `python -m` tools: `gans.tools.fid` (FID of two image sets) and `gans.tools.sample` (draw
images from a checkpoint), also reachable by their short names `python -m gans.fid` and
`python -m gans.sample`. They call the library parts (`gans.metrics`, `gans.checkpoint`,
`gans.generation`) and hold no metric or model code themselves."""
