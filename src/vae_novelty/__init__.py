"""vae-novelty: does a VAE decoder generate novel examples, or weighted averages of its training set?"""
