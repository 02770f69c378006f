"""Training: config, data preparation, the loop, run folders and distributed set-up."""
