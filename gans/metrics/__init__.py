"""Image-quality metrics: FID and KID with the standard Inception weights."""
