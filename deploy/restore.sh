#!/bin/sh
# restore.sh DB_DUMP MODELS_TAR MEDIA_TAR: put a backup (backup.sh) back. Stop every app host first; start them after.
# The model store and the kept photos go back to the same RECOGNIZER_MODELS_DIR and MEDIA_ROOT: the records name
# artifacts by absolute path and photos by their place under MEDIA_ROOT.
set -eu
usage="usage: restore.sh DB_DUMP MODELS_TAR MEDIA_TAR"
dump=${1:?$usage}
models=${2:?$usage}
media=${3:?$usage}
: "${DATABASE_URL:?set DATABASE_URL}" "${RECOGNIZER_MODELS_DIR:?set RECOGNIZER_MODELS_DIR}" "${MEDIA_ROOT:?set MEDIA_ROOT}"
mkdir -p "$RECOGNIZER_MODELS_DIR" "$MEDIA_ROOT"
tar -C "$RECOGNIZER_MODELS_DIR" -xzf "$models"
tar -C "$MEDIA_ROOT" -xzf "$media"
pg_restore --clean --if-exists --no-owner --single-transaction --dbname="$DATABASE_URL" "$dump"
echo "restored; run manage.py models to check every version's artifact"
