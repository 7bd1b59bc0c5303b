#!/bin/sh
# backup.sh DEST_DIR: the database (pg_dump, custom format), the model store and the kept photos (tar), with one
# time stamp. Reads DATABASE_URL, RECOGNIZER_MODELS_DIR and MEDIA_ROOT (e.g. `set -a; . /etc/recognizer/recognizer.env;
# set +a`). The database is dumped first: artifacts and photos are only ever added, so every version and feedback
# photo the dump knows is in the tars. The files hold password and token hashes: readable by their owner only.
set -eu
dest=${1:?usage: backup.sh DEST_DIR}
: "${DATABASE_URL:?set DATABASE_URL}" "${RECOGNIZER_MODELS_DIR:?set RECOGNIZER_MODELS_DIR}" "${MEDIA_ROOT:?set MEDIA_ROOT}"
umask 077
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$dest"
pg_dump --format=custom --no-owner --dbname="$DATABASE_URL" --file="$dest/db-$stamp.dump"
tar -C "$RECOGNIZER_MODELS_DIR" -czf "$dest/models-$stamp.tar.gz" .
mkdir -p "$MEDIA_ROOT"
tar -C "$MEDIA_ROOT" -czf "$dest/media-$stamp.tar.gz" .
echo "$dest/db-$stamp.dump $dest/models-$stamp.tar.gz $dest/media-$stamp.tar.gz"
