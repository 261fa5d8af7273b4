"""Generator and discriminator networks, one module per model family."""
