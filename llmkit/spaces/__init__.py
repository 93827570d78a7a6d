"""Hugging Face Spaces: assemble a folder from a template, validate it (and run it), deploy it."""

from llmkit.spaces.build import build_space
from llmkit.spaces.check import serve_and_query, validate
from llmkit.spaces.deploy import deploy_space
from llmkit.spaces.templates import TEMPLATES

__all__ = ["TEMPLATES", "build_space", "deploy_space", "serve_and_query", "validate"]
