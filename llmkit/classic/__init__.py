"""The classic baselines (MLP in NumPy and PyTorch, CNN, RNN, GAN, VAE, diffusion, RBM/DBN, word2vec) and their shared loop."""
