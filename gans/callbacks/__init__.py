"""Lightning callbacks: sample grids and latent interpolations."""
