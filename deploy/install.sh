#!/bin/sh
# Install polyfarm and its locked runtime dependencies (no development tools) into a new
# virtual environment, from the checkout this script belongs to. The Dockerfile's build stage
# runs it, and so does tests/deploy/test_image.py, so the image's install is tested here.
#
#   deploy/install.sh TARGET      TARGET: the environment to create (removed first if present)
#
# Environment: PYTHON (default python3), UV (default uv; the Makefile pins uv 0.13.9).
set -eu
target=${1:?usage: deploy/install.sh TARGET}
source_dir=$(cd "$(dirname "$0")/.." && pwd)
uv=${UV:-uv}
rm -rf "$target"
# --frozen: exactly uv.lock, or fail; --no-editable: the package is copied in, so the
# environment runs without the checkout (the image's runtime stage has only the environment).
UV_PROJECT_ENVIRONMENT="$target" UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 \
    "$uv" sync --project "$source_dir" --frozen --no-dev --no-editable \
    --python "${PYTHON:-python3}"
"$target/bin/polyfarm" --help >/dev/null
