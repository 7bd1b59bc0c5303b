#!/bin/sh
# restore.sh DB_DUMP MODELS_TAR: put a backup (backup.sh) back. Stop every app host first; start them after.
# The model store goes back to the same RECOGNIZER_MODELS_DIR: versions record absolute artifact paths.
set -eu
dump=${1:?usage: restore.sh DB_DUMP MODELS_TAR}
models=${2:?usage: restore.sh DB_DUMP MODELS_TAR}
: "${DATABASE_URL:?set DATABASE_URL}" "${RECOGNIZER_MODELS_DIR:?set RECOGNIZER_MODELS_DIR}"
mkdir -p "$RECOGNIZER_MODELS_DIR"
tar -C "$RECOGNIZER_MODELS_DIR" -xzf "$models"
pg_restore --clean --if-exists --no-owner --single-transaction --dbname="$DATABASE_URL" "$dump"
echo "restored; run manage.py models to check every version's artifact"
