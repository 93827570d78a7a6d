"""Upload a Space folder to the Hugging Face Hub (create_repo + upload_folder), secrets from the environment."""

from __future__ import annotations

import os
import re
from pathlib import Path

from llmkit.errors import UserError
from llmkit.secrets import find_tokens, install_log_redaction, redact
from llmkit.spaces.check import not_a_space, restore_databases, validate
from llmkit.spaces.scan import NOT_UPLOADED, upload_files

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")


def deploy_space(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    dry_run: bool = False,
    secrets: list[str] | None = None,
    endpoint: str | None = None,
) -> str:
    """Create (or reuse) the Space and upload the folder; returns the Space URL.

    The token comes from HF_TOKEN or the stored `hf auth login`; it is passed to huggingface_hub
    in memory and never written anywhere. `secrets` names environment variables to set as Space secrets.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; build one with `llmkit space build`.")
    not_a_space(folder)
    if not REPO_ID.match(repo_id or ""):
        raise UserError(
            f"--repo_id {repo_id!r} is not of the form USER/NAME (letters, digits, '-', '_', '.')."
        )
    if find_tokens(repo_id):
        raise UserError(
            "--repo_id holds what looks like a token; a Space's name is public: choose another name."
        )
    # An app run from the folder by hand left its store's write-ahead log beside it: fold it back first, so
    # what is checked, listed and uploaded is the one-file store `build` wrote, with every row.
    restore_databases(folder)
    problems = validate(folder)
    if problems:
        raise UserError(
            "the folder is not ready to deploy:\n  - "
            + "\n  - ".join(problems)
            + "\nRun `llmkit space check` after fixing it."
        )
    files = [str(p.relative_to(folder)) for p in upload_files(folder)]
    missing = [name for name in secrets or [] if not os.environ.get(name)]
    if missing:
        raise UserError(f"secret(s) {missing} are not set in the environment; export them or drop --secret.")
    if dry_run:
        total = sum((folder / f).stat().st_size for f in files)
        print(
            f"would create Space {repo_id} ({'private' if private else 'public'}) and upload {len(files)} files, {total / 2**20:.1f} MB:"
        )
        print("\n".join(f"  {f}" for f in files))
        if secrets:
            print(f"and set the secrets {secrets} from the environment")
        return f"(dry run) {repo_id}"

    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    token = os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise UserError(
            "no Hugging Face token: export HF_TOKEN=... or run `hf auth login` (a token with write access)."
        )
    install_log_redaction()  # huggingface_hub's own log lines too
    api = HfApi(endpoint=endpoint, token=token)
    try:
        url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="space",
            commit_message="Deploy with llmkit",
            ignore_patterns=NOT_UPLOADED,  # the same files as upload_files leaves out of the listing
        )
        for name in secrets or []:
            api.add_space_secret(repo_id, name, os.environ[name])
    except Exception as err:  # HTTP errors, auth, network: the local folder is untouched either way
        message = _without_secrets(str(err), [token, *(os.environ[name] for name in secrets or [])])
        what = "the Hub refused the upload" if isinstance(err, HfHubHTTPError) else "could not reach the Hub"
        raise UserError(
            f"{what} ({type(err).__name__}: {message}); the folder {folder} is unchanged."
        ) from None
    space_url = f"{(endpoint or 'https://huggingface.co').rstrip('/')}/spaces/{repo_id}"
    print(f"deployed: {space_url}  (repo {getattr(url, 'url', url)})")
    return space_url


def _without_secrets(message: str, values: list[str]) -> str:
    """An error message with the token, the secrets' values and anything token-shaped masked out."""
    for value in sorted(filter(None, values), key=len, reverse=True):
        message = message.replace(value, "***")
    return redact(message)
