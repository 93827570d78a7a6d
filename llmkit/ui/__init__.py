"""Gradio apps: each builder returns a gr.Blocks that apps/ launch locally and Spaces deploy."""
