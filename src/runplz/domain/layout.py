"""Where things live inside a runplz container or run directory."""

REPO_DIR = "/runplz/repo"
BUNDLE_DIR = "/runplz/bundle"
RUN_DIR = "/runplz/run"
OUT_DIR = "/out"
BOOT_SCRIPT = "runplz_boot.py"
PAYLOAD_FILE = "payload.json"
RESULT_FILE = "result.json"

# Arcname prefixes inside a docker build context that runplz assembles.
CONTEXT_REPO = "repo"
CONTEXT_BUNDLE = "bundle"
