#!/usr/bin/env bash
# Set up (system packages, release build, sample models) and start the gateway on
# 127.0.0.1:8080 with the default CPU profile. Extra arguments go to `switchyard serve`.
source "$(dirname "$0")/common.sh"
ensure_system_packages
build_release
fetch_models
log "starting switchyard on ${SWITCHYARD_LISTEN:-127.0.0.1:8080}"
exec "$SWITCHYARD_BIN" serve --listen "${SWITCHYARD_LISTEN:-127.0.0.1:8080}" "$@"
