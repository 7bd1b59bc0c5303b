#!/bin/sh
# backup.sh DEST_DIR: the database (pg_dump, custom format) and the model store (tar), with one time stamp.
# Reads DATABASE_URL and RECOGNIZER_MODELS_DIR (e.g. `set -a; . /etc/recognizer/recognizer.env; set +a`).
# The database is dumped first: artifacts are only ever added, so every version the dump knows is in the tar.
set -eu
dest=${1:?usage: backup.sh DEST_DIR}
: "${DATABASE_URL:?set DATABASE_URL}" "${RECOGNIZER_MODELS_DIR:?set RECOGNIZER_MODELS_DIR}"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$dest"
pg_dump --format=custom --no-owner --dbname="$DATABASE_URL" --file="$dest/db-$stamp.dump"
tar -C "$RECOGNIZER_MODELS_DIR" -czf "$dest/models-$stamp.tar.gz" .
echo "$dest/db-$stamp.dump $dest/models-$stamp.tar.gz"
