"""Image-quality metrics: FID and KID with the standard Inception weights, class-aware scores,
and the autoencoders' comparisons (PCA baseline, sharpness, nearest-training-image distances)."""
