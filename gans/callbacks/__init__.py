"""Lightning callbacks: sample grids and latent interpolations, progress in iterations, the wall-time budget."""
